from llm_lib import privacy


def test_emails_phones_and_names_are_removed():
    text = (
        "Dear Alice Martin, call me on +32 475 12 34 56 or (02) 555-1212, or write to "
        "alice.martin@acme.example.com. Regards, Bob"
    )
    out = privacy.redact(text, names=["Alice Martin", "Bob Stone"])
    for secret in ("Alice", "Martin", "475 12 34 56", "555-1212", "alice.martin@", "Bob"):
        assert secret not in out
    assert out.count(privacy.EMAIL_MARK) == 1
    assert out.count(privacy.PHONE_MARK) == 2
    assert privacy.NAME_MARK in out


def test_dates_amounts_and_short_numbers_are_kept():
    text = "Budget 40000 EUR for 50 users by 2027-03-31 or 31/03/2027, ref 12-34."
    assert privacy.redact(text) == text


def test_names_match_whole_words_case_insensitively():
    out = privacy.redact("ANN met Annabel; ann's offer", names=["Ann"])
    assert out == "[contact] met Annabel; [contact]'s offer"


def test_research_keeps_only_what_the_lead_says():
    known = privacy.known_facts(
        "https://acme.example.com info@acme.example.com +32 2 555 12 12 Brussels"
    )
    answer = (
        "Acme (https://www.acme.example.com/about, acme.example.com) is in Brussels. "
        "Write to info@acme.example.com or ceo@acme-invented.io, call +32 2 555 12 12 or "
        "+1 555 010 0200, see https://linkedin.com/company/acme and wikipedia.org."
    )
    out = privacy.keep_known(answer, known)
    assert "https://www.acme.example.com/about" in out
    assert "info@acme.example.com" in out
    assert "+32 2 555 12 12" in out
    for invented in ("acme-invented.io", "555 010 0200", "linkedin.com", "wikipedia.org"):
        assert invented not in out
    assert out.count(privacy.REMOVED_MARK) == 4
