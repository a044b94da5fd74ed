"""The names people give accounts and API tokens: one character set, normalised, compared
without case.

A name is only for people to read (who did what is a typed actor, ``vardfil.actors``), but people
read it in the audit log, in addresses and in mails, so it must not be able to pass for another:

- NFKC-normalised first (a fullwidth ``ａｎｎａ`` is ``anna``), spaces at either end removed;
- 1–128 characters (the column's length);
- only letters of the Latin script (a–z, å, ä, ö, é, ü …), digits 0–9, the space (never two in a
  row) and ``. - _ @ '``; so no control character, no line break, none of ``/ ? # % :``, and no
  letter of another script that looks like a Latin one (Cyrillic ``а`` in ``аnalytiker``);
- not the name of one of vardfil's own runs (``airflow``, ``sample``, ``portal`` …);
- not shaped like an HSA-id (``SE…-…``): a person who signs in through the IdP is named by theirs;
- unique without regard to case: ``Anna`` and ``anna`` are one name (``name_key``).

Names made before these rules keep working (they are looked up by their exact text or their key)
and can be disabled and revoked; they are addressed by id in the portal, never by name.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME = 128
_PUNCTUATION = set(".-_@' ")
# vardfil's own runs (vardfil.actors.job): an account of that name would read like one in the log.
RESERVED = frozenset({"airflow", "cli", "dag", "sample", "portal", "intake", "bench", "test", "system", "job", "api"})


def name_key(name: str) -> str:
    """The name as it is compared: NFKC, case folded (unique per table)."""
    return unicodedata.normalize("NFKC", name).casefold().strip()


def _latin_letter(c: str) -> bool:
    return c.isalpha() and "LATIN" in unicodedata.name(c, "")


def check_name(name: str, what: str = "namnet") -> str:
    """The normalised name, or ValueError with a Swedish reason."""
    n = unicodedata.normalize("NFKC", name).strip(" ")
    if not n:
        raise ValueError(f"{what} får inte vara tomt")
    if len(n) > MAX_NAME:
        raise ValueError(f"{what} får vara högst {MAX_NAME} tecken")
    bad = sorted({c for c in n if not (_latin_letter(c) or c in "0123456789" or c in _PUNCTUATION)})
    if bad:
        shown = ", ".join(repr(c) if c.isprintable() and not c.isspace() else f"U+{ord(c):04X}" for c in bad[:5])
        raise ValueError(
            f"{what} får bara innehålla latinska bokstäver, siffror, mellanslag och . - _ @ ' (inte {shown})"
        )
    if "  " in n:
        raise ValueError(f"{what} får inte innehålla två mellanslag i rad")
    if not re.search(r"[0-9A-Za-z]", unicodedata.normalize("NFKD", n)):
        raise ValueError(f"{what} behöver minst en bokstav eller siffra")
    if name_key(n) in RESERVED:
        raise ValueError(f"{what} {n} är reserverat för vardfils egna körningar")
    if re.match(r"se[0-9]{10}-", name_key(n)):
        raise ValueError(f"{what} får inte se ut som ett HSA-id: den som loggar in med SITHS heter sitt HSA-id")
    return n
