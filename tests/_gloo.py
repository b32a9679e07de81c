"""gloo's words for a peer whose connection ended, as a test matches them.

gloo words the loss by which socket call meets it first (its transport/tcp/pair.cc): a read
that finds the connection's end says ``Connection closed by peer [ip]:port``; a read or a
write the kernel fails says ``Read error [ip]:port: <strerror>`` or ``writev [ip]:port:
<strerror>``, the errno ECONNRESET ("Connection reset by peer", the peer's end had unread
bytes) or EPIPE ("Broken pipe"). Which one a rank meets is the machine's timing: CI met
"Read error … Connection reset by peer" where the test knew only "closed by peer", and lost
a session's work. A test matches every form (trainer.peer_loss takes them all).
"""
from __future__ import annotations

#: A regular expression (no groups of its own) for gloo's words, after "gloo: ".
LOST_PEER = (r"(?:Connection (?:closed|reset) by peer \[127\.0\.0\.1\]:\d+|"
             r"[^()]*(?:Connection reset by peer|Broken pipe))")
