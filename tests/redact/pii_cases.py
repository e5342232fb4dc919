"""Realistic sentences written for the redaction tests, each with the personal data it holds
(entity type, exact value). Names come from many cultures; the numbers that are NOT personal
data (invoice, order, ticket, patent, part and tracking numbers, versions, dates of events,
amounts) are there to count false positives: their sentences list nothing. The card numbers
are the networks' published test numbers, the IBANs the registries' example accounts, the
phone numbers drama/fiction ranges where a country has one; none is anyone's.

``benchmarks/redact.py`` measures precision, recall and F2 per entity type on these;
``tests/redact/test_redact.py`` checks that no e-mail, phone, IBAN or card survives.
"""

from __future__ import annotations

Case = tuple[str, list[tuple[str, str]]]

CASES: list[Case] = [
    # ---- e-mail addresses
    (
        "Please send the signed contract to maria.garcia@example.com before Friday.",
        [("EMAIL_ADDRESS", "maria.garcia@example.com")],
    ),
    (
        "Oluwaseun Adeyemi (o.adeyemi+invoices@mail.example.co.uk) approved the transfer.",
        [
            ("PERSON", "Oluwaseun Adeyemi"),
            ("EMAIL_ADDRESS", "o.adeyemi+invoices@mail.example.co.uk"),
        ],
    ),
    (
        "Questions go to support@helpdesk.example.org, not to the sales team.",
        [("EMAIL_ADDRESS", "support@helpdesk.example.org")],
    ),
    (
        "From: Priya Ramanathan <priya_r@example.in>",
        [("PERSON", "Priya Ramanathan"), ("EMAIL_ADDRESS", "priya_r@example.in")],
    ),
    (
        "Zhang Wei wrote from zhang.wei1987@example.cn about the delayed shipment.",
        [("PERSON", "Zhang Wei"), ("EMAIL_ADDRESS", "zhang.wei1987@example.cn")],
    ),
    # ---- phone numbers
    (
        "You can reach Siobhán O'Connor on +44 20 7946 0958 during office hours.",
        [("PERSON", "Siobhán O'Connor"), ("PHONE_NUMBER", "+44 20 7946 0958")],
    ),
    (
        "Call our hotline at (212) 555-0147 if the device overheats.",
        [("PHONE_NUMBER", "(212) 555-0147")],
    ),
    (
        "Kwame Mensah's mobile is +1 415-555-0132; leave a message.",
        [("PERSON", "Kwame Mensah"), ("PHONE_NUMBER", "+1 415-555-0132")],
    ),
    (
        "The Berlin office answers on +49 30 901820 until 5 pm.",
        [("PHONE_NUMBER", "+49 30 901820")],
    ),
    (
        "Rahul Sharma gave his number as +91 98765 43210 on the form.",
        [("PERSON", "Rahul Sharma"), ("PHONE_NUMBER", "+91 98765 43210")],
    ),
    (
        "For repairs phone 0161 496 0753 and quote your order.",
        [("PHONE_NUMBER", "0161 496 0753")],
    ),
    (
        "Paris reception: +33 1 42 68 53 00.",
        [("PHONE_NUMBER", "+33 1 42 68 53 00")],
    ),
    # ---- IBANs (valid mod-97 checksums)
    (
        "Transfer the deposit to IBAN GB82 WEST 1234 5698 7654 32 by the end of the month.",
        [("IBAN_CODE", "GB82 WEST 1234 5698 7654 32")],
    ),
    (
        "Hannah Müller's salary account is DE89 3704 0044 0532 0130 00.",
        [("PERSON", "Hannah Müller"), ("IBAN_CODE", "DE89 3704 0044 0532 0130 00")],
    ),
    (
        "Refunds are paid to NL91ABNA0417164300 within ten working days.",
        [("IBAN_CODE", "NL91ABNA0417164300")],
    ),
    (
        "José María Fernández asked us to use ES91 2100 0418 4502 0005 1332 from now on.",
        [("PERSON", "José María Fernández"), ("IBAN_CODE", "ES91 2100 0418 4502 0005 1332")],
    ),
    (
        "Beneficiary account: FR14 2004 1010 0505 0001 3M02 606.",
        [("IBAN_CODE", "FR14 2004 1010 0505 0001 3M02 606")],
    ),
    # ---- credit cards (Luhn-valid test numbers)
    (
        "The customer paid with card 4111 1111 1111 1111, expiry 09/27.",
        [("CREDIT_CARD", "4111 1111 1111 1111")],
    ),
    (
        "Aiko Tanaka's corporate card 5500-0000-0000-0004 was declined twice.",
        [("PERSON", "Aiko Tanaka"), ("CREDIT_CARD", "5500-0000-0000-0004")],
    ),
    (
        "Charge the booking to 378282246310005 and email the receipt.",
        [("CREDIT_CARD", "378282246310005")],
    ),
    (
        "Card on file: 6011 0000 0000 0004 (Discover).",
        [("CREDIT_CARD", "6011 0000 0000 0004")],
    ),
    # ---- network identifiers
    (
        "The login attempts came from 203.0.113.57 and were blocked.",
        [("IP_ADDRESS", "203.0.113.57")],
    ),
    (
        "Mohammed Al-Farsi configured the printer at 192.168.10.4.",
        [("PERSON", "Mohammed Al-Farsi"), ("IP_ADDRESS", "192.168.10.4")],
    ),
    (
        "His profile page is https://social.example.net/users/olga.ivanova and it is public.",
        [("URL", "https://social.example.net/users/olga.ivanova")],
    ),
    # ---- national identifiers
    (
        "Employee Lars Eriksson, SSN 536-22-8726, started in March.",
        [("PERSON", "Lars Eriksson"), ("US_SSN", "536-22-8726")],
    ),
    (
        "Her National Insurance number is AB 12 34 56 C according to HR.",
        [("UK_NINO", "AB 12 34 56 C")],
    ),
    (
        "Chidi Okafor, NI number JG103759A, claimed the allowance.",
        [("PERSON", "Chidi Okafor"), ("UK_NINO", "JG103759A")],
    ),
    # ---- dates of birth
    (
        "Fatima Zahra Benali was born on 14 July 1979 in Fez.",
        [("PERSON", "Fatima Zahra Benali"), ("DATE_OF_BIRTH", "14 July 1979")],
    ),
    (
        "Patient record: DOB: 03/11/1990, blood type A+.",
        [("DATE_OF_BIRTH", "03/11/1990")],
    ),
    (
        "Applicant Nguyen Thi Lan, date of birth 1985-02-17, nationality Vietnamese.",
        [("PERSON", "Nguyen Thi Lan"), ("DATE_OF_BIRTH", "1985-02-17")],
    ),
    # ---- passports
    (
        "Traveller Ingrid Solberg, passport no. C01X00T47, boarded at gate 12.",
        [("PERSON", "Ingrid Solberg"), ("PASSPORT", "C01X00T47")],
    ),
    ("Please scan your passport number: 502135326 before check-in.", [("PASSPORT", "502135326")]),
    # ---- names only
    ("Mei Lin Chen will present the quarterly results on Thursday.", [("PERSON", "Mei Lin Chen")]),
    (
        "The contract was countersigned by Olga Ivanova and Tomasz Kowalczyk.",
        [("PERSON", "Olga Ivanova"), ("PERSON", "Tomasz Kowalczyk")],
    ),  # fmt: skip
    ("Dear Mr. Okonkwo, thank you for your letter of complaint.", [("PERSON", "Okonkwo")]),
    (
        "Sven Lindqvist and Ayesha Siddiqui reviewed the audit findings.",
        [("PERSON", "Sven Lindqvist"), ("PERSON", "Ayesha Siddiqui")],
    ),  # fmt: skip
    # ---- several in one sentence
    (
        "Contact Daniel Cohen at daniel.cohen@example.com or +44 161 496 0000, "
        "account GB82WEST12345698765432.",
        [
            ("PERSON", "Daniel Cohen"),
            ("EMAIL_ADDRESS", "daniel.cohen@example.com"),
            ("PHONE_NUMBER", "+44 161 496 0000"),
            ("IBAN_CODE", "GB82WEST12345698765432"),
        ],
    ),
    # ---- numbers and names that are NOT personal data (false positives are counted)
    ("Invoice INV-2024-00123 totals 1,250.00 EUR and is due on 2024-03-31.", []),
    ("Order number 4500012345 shipped on 12 March 2024 from the Leeds warehouse.", []),
    ("Ticket 20240315-0042 was closed after the firmware update.", []),
    ("Version 3.11.4 fixes bug 48213 in the export module.", []),
    ("The meeting on 14/05/2023 moved to room 4.12 on the second floor.", []),
    ("Patent US 9,876,543 B2 claims a rotating valve assembly.", []),
    ("Tracking number 1Z999AA10123456784 shows the parcel in transit.", []),
    ("Reference 2023/INV/778899 covers the maintenance contract.", []),
    ("Part no. 0650-7781-22 costs $19.99 plus shipping.", []),
    ("Pay by 31.12.2024 to avoid late fees of 2.5 percent.", []),
    ("The conference ran from June 3 to June 7, 2022, in Lisbon.", []),
    ("Event date 2023-09-01, doors open at 18:30, tickets cost 45 GBP.", []),
    ("Purchase order PO 7700123456 was approved by the finance committee.", []),
    ("Batch 2024-118-0093 of the reagent expires in 2026.", []),
    ("Our revenue grew 12.4 percent to 3,456,789 dollars in Q3 2023.", []),
    ("Apple released the new model in September, and Amazon cut its prices.", []),
    ("The Jordan River flows south into the Dead Sea.", []),
    ("Goldman Sachs raised its forecast for the euro area.", []),
    ("Serial number SN-88421-7730-19 is printed on the back plate.", []),
    ("Call 911 in an emergency; the helpdesk extension is 4417.", []),
    # added after the identifier cues were written (not tuned on)
    ("The shipment weighed 12,450 kg across 3 pallets.", []),
    ("Room 2041 in building 7 opens at 08:15.", []),
    ("Customer ID 88123456789 was merged with an older account.", []),
    ("The model number is XR-5500-2201.", []),
    ("Flight BA0117 leaves at 14:05 from gate 22.", []),
    ("The grant 2024-7781-0032 funds three doctoral positions.", []),
    # added with the passport recognizer: a passport office and a booking code are not passports
    ("The passport office on Main Street opens at 9; bring booking code K7Q2X9.", []),
]


def gold_spans(text: str, entities: list[tuple[str, str]]) -> list[tuple[str, int, int]]:
    """(type, start, end) of each listed value in ``text`` (its first occurrence after the
    previous one of the same value)."""
    spans = []
    for kind, value in entities:
        start = text.find(value)
        while any(s == start for _, s, _ in spans):
            start = text.find(value, start + 1)
        assert start >= 0, (value, text)
        spans.append((kind, start, start + len(value)))
    return spans


def score(found: list[tuple[str, int, int]], gold: list[tuple[str, int, int]]) -> dict:
    """Per type: true positives (a found span of the same type overlapping a gold one), false
    positives, false negatives; and per gold span whether any found span covers it (redacted
    under whatever type)."""
    out: dict = {}

    def bump(kind: str, key: str) -> None:
        out.setdefault(kind, {"tp": 0, "fp": 0, "fn": 0, "covered": 0, "gold": 0})[key] += 1

    def overlaps(a: tuple[str, int, int], b: tuple[str, int, int]) -> bool:
        return a[1] < b[2] and b[1] < a[2]

    for g in gold:
        bump(g[0], "gold")
        if any(f[0] == g[0] and overlaps(f, g) for f in found):
            bump(g[0], "tp")
        else:
            bump(g[0], "fn")
        if any(overlaps(f, g) for f in found):
            bump(g[0], "covered")
    for f in found:
        if not any(f[0] == g[0] and overlaps(f, g) for g in gold):
            bump(f[0], "fp")
    return out
