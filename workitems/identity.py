"""Who a person is, for the queue's four eyes (docs/contract/work-items.md, Approval).

A command's identity is the operating-system account running it, read from the
process's effective uid: an environment variable (USER, LOGNAME, the retired
BILLOPS_ACTOR) is whatever the caller typed, so it names nobody. `--by` stays
for scripts, but only as a check that the caller knows who they are.

Names are compared as people read them (`person_key`), so `ana` and `ANA`,
`alice` and `ali\u200bce` (a zero-width space) or fullwidth `ａｌｉｃｅ` are one
person; a console account (a later channel) and the OS user of the same name
compare through the same key.
"""

from __future__ import annotations

import os
import pwd
import unicodedata


class NotThisUser(Exception):
    """`--by` names someone other than the OS user running the command; the message says who that is."""


def person_key(name: str) -> str:
    """The one comparable form of a person's name: NFKC, format characters (Unicode category Cf, e.g.
    U+200B zero-width space) removed, case folded, runs of white space made one space.

    NFKC runs again after folding because folding can leave a string that is not normalised.
    """
    text = unicodedata.normalize("NFKC", name)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = unicodedata.normalize("NFKC", text.casefold())
    return " ".join(text.split())


def visible(name: str) -> str:
    """A name as it may be printed: a hidden character (zero-width space, control) shown as `\\uXXXX`."""
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in name)


def os_user() -> str:
    """The account of the process's effective uid; `uid:N` where the password database has no entry
    (a container run with an arbitrary uid): the kernel's uid is still nobody else's."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def command_identity(by: str | None) -> str:
    """The identity of a command: the OS user. `by`, when given, must name that user (after `person_key`)."""
    user = os_user()
    if by is not None and person_key(by) != person_key(user):
        raise NotThisUser(f"--by {visible(by)} is not you: this command runs as the OS user {user}; "
                          f"billops records the OS user, so --by may only name {user} (or be left out)")
    return user
