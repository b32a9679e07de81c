"""VOC data: reading, augmentation, datasets and loaders, synthetic data."""
import cv2 as _cv2

# Single-threaded OpenCV, set before any pool exists: DataLoader workers are forked, and a
# child that touches a thread pool its parent started can deadlock. The workers are the
# parallelism anyway, and our images are small.
_cv2.setNumThreads(1)
