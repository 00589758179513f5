"""Finds e-mail addresses and phone numbers in text and replaces them with placeholders.

Pure Python (`re` only), so it runs the same inside the component and under CPython in the
unit tests. The patterns are deliberately generous: a false positive costs one word of
context in the prompt, a false negative sends personal data off the box.
"""

import re
from dataclasses import dataclass

EMAIL_PLACEHOLDER = "[EMAIL]"
PHONE_PLACEHOLDER = "[PHONE]"

# local-part@domain.tld, the characters RFC 5322 allows unquoted in practice.
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")

# An optional +country code, an optional (area code), then digit groups separated by a
# space, dot or dash. Candidates are checked by digit count below.
_PHONE = re.compile(
    r"(?<![\w+])"
    r"(?:\+\d{1,3}[ .-]?)?"
    r"(?:\(\d{1,5}\)[ .-]?)?"
    r"\d{2,5}(?:[ .-]?\d{2,5}){1,4}"
    r"(?!\w)"
)

# Shortest and longest numbers taken for phone numbers (E.164 allows at most 15 digits).
_MIN_PHONE_DIGITS = 7
_MAX_PHONE_DIGITS = 15

# ISO dates and times look like dash- or dot-separated digit groups too.
_NOT_A_PHONE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}\.\d{1,2}\.\d{2,4}")


@dataclass
class Redacted:
    """Text with personal data replaced, and how many items of each kind were replaced."""

    text: str
    emails: int = 0
    phones: int = 0

    @property
    def total(self) -> int:
        """Items replaced, all kinds together."""
        return self.emails + self.phones


def redact(text: str) -> Redacted:
    """Replaces every e-mail address with `[EMAIL]`, then every phone number with `[PHONE]`.

    E-mail addresses go first so that digits inside one are never counted as a phone.
    """
    text, emails = _EMAIL.subn(EMAIL_PLACEHOLDER, text)
    phones = 0

    def phone(match: re.Match) -> str:
        nonlocal phones
        candidate = match.group(0)
        digits = sum(c.isdigit() for c in candidate)
        if not _MIN_PHONE_DIGITS <= digits <= _MAX_PHONE_DIGITS:
            return candidate
        if _NOT_A_PHONE.fullmatch(candidate):
            return candidate
        phones += 1
        return PHONE_PLACEHOLDER

    text = _PHONE.sub(phone, text)
    return Redacted(text, emails, phones)
