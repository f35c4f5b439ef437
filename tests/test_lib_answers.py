import json

import pytest

from llm_lib import answers

GOOD = {
    "clarity": 72,
    "summary": "Clear need, budget stated.",
    "strengths": ["budget"],
    "risks": [],
    "next_action": "Call the buyer.",
}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(GOOD),
        "```json\n%s\n```" % json.dumps(GOOD),
        "Here you go: %s Thanks!" % json.dumps(GOOD),
        "```\n%s\n```" % json.dumps(GOOD),
    ],
)
def test_accepted_shapes(text):
    assert answers.parse_analysis(text)["clarity"] == 72.0


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("<html><body>502</body></html>", "no JSON"),
        (json.dumps(dict(GOOD, clarity=101)), "not between"),
        (json.dumps(dict(GOOD, clarity="high")), "not a number"),
        (json.dumps(dict(GOOD, clarity=True)), "not a number"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "risks"}), "misses: risks"),
        (json.dumps(dict(GOOD, strengths="budget")), "not a list"),
        (json.dumps(dict(GOOD, summary="  ")), "summary is empty"),
        ('{"clarity": 80, "summary": "cut', "no JSON"),
    ],
)
def test_unusable(text, message):
    with pytest.raises(answers.UnusableAnswer, match=message):
        answers.parse_analysis(text)


def test_provider_bodies():
    openai = {
        "choices": [{"message": {"content": "x"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
    }
    assert answers.parse_provider_body("openai", openai) == ("x", 1, 2)
    anthropic = {
        "content": [{"type": "text", "text": "y"}],
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }
    assert answers.parse_provider_body("anthropic", anthropic) == ("y", 3, 4)
    for body in ({}, {"choices": []}, {"choices": [{"message": {"content": ""}}]}, []):
        with pytest.raises(answers.UnusableAnswer):
            answers.parse_provider_body("openai", body)


def test_truncated_answers_are_reported_as_truncated():
    body = {
        "choices": [{"message": {"content": '{"clarity": 80, "summ'}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 800},
    }
    with pytest.raises(answers.UnusableAnswer, match="truncated"):
        answers.parse_provider_body("openai_compatible", body)
    anthropic = {"content": [{"type": "text", "text": "{"}], "stop_reason": "max_tokens"}
    with pytest.raises(answers.UnusableAnswer, match="truncated"):
        answers.parse_provider_body("anthropic", anthropic)


def test_anthropic_forced_tool_call_is_the_json_answer():
    body = {
        "content": [{"type": "tool_use", "name": "answer", "input": {"clarity": 70}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 5, "output_tokens": 7},
    }
    content, tokens_in, tokens_out = answers.parse_provider_body("anthropic", body)
    assert json.loads(content) == {"clarity": 70} and (tokens_in, tokens_out) == (5, 7)


def test_empty_answer_hints_at_the_chat_template():
    body = {"choices": [{"message": {"content": "  "}, "finish_reason": "stop"}]}
    with pytest.raises(answers.UnusableAnswer, match="chat template"):
        answers.parse_provider_body("openai_compatible", body)


PROMPT = "You are a sales assistant who drafts texts for a salesperson. The CRM lead is given."


@pytest.mark.parametrize(
    "text, reason",
    [
        ('<lead_data>\n{"title": "x"}\n</lead_data>', "markers"),
        (PROMPT + " Hello!", "repeats the prompt"),
        ('{"subject": "Hi", "body": "Hello there"}', "JSON dump"),
        ("Dear <one sentence>, thanks", "placeholder"),
        (":{ 3 4 5", "too few real words"),
        ("word " * 700, "too long"),
    ],
)
def test_check_text_refuses_what_is_not_a_real_answer(text, reason):
    with pytest.raises(answers.UnusableAnswer, match=reason):
        answers.check_text(text, [PROMPT], min_words=3, max_chars=3000)


def test_check_text_keeps_a_real_draft():
    draft = "Subject: Next steps\n\nHello Carla,\nThank you for your time today.\nSam"
    assert answers.check_text(draft, [PROMPT], min_words=3) == draft


def test_analysis_with_nonsense_copied_from_the_prompt_is_refused():
    nonsense = {
        "clarity": 50,
        "summary": ":{",
        "strengths": ["3", "4", "5"],
        "risks": [],
        "next_action": "<one sentence>",
    }
    with pytest.raises(answers.UnusableAnswer):
        answers.parse_analysis(json.dumps(nonsense))
    nonsense["summary"] = "Clear need with a budget."
    with pytest.raises(answers.UnusableAnswer, match="placeholder"):
        answers.parse_analysis(json.dumps(nonsense))
    nonsense["next_action"] = "Call the CFO."
    parsed = answers.parse_analysis(json.dumps(nonsense))
    assert parsed["strengths"] == []  # numbers are not strengths


# what a real small model (Gemma 3 270M) answered on a quiet machine, 3 December
COPIED = [
    ("summary", "Le Club SARL", "copies the lead's data"),
    (
        "summary",
        "The Oil Company is a leading supplier of oil and gas products in France.",
        "copies the lead's data",
    ),
    ("next_action", "New", "too few real words"),
    ("next_action", "Qualification stage", "copies the lead's data"),
]
DATA = [
    "Le Club SARL",
    "Qualification Stage",
    "<p>The Oil Company is a leading supplier of oil and gas products in France. We are "
    "looking for a Purchase Manager tool.</p>",
]


@pytest.mark.parametrize("field, value, reason", COPIED)
def test_analysis_repeating_the_lead_data_is_refused(field, value, reason):
    answer = dict(GOOD, **{field: value})
    with pytest.raises(answers.UnusableAnswer, match=reason):
        answers.parse_analysis(json.dumps(answer), data_texts=DATA)


def test_analysis_in_own_words_quoting_the_data_is_kept():
    answer = dict(
        GOOD,
        summary="Le Club SARL needs a purchase tool; no budget or timeline stated.",
        next_action="Ask Le Club SARL for their budget.",
    )
    parsed = answers.parse_analysis(json.dumps(answer), data_texts=DATA)
    assert parsed["next_action"] == "Ask Le Club SARL for their budget."


def test_bounded_schema_caps_every_free_text_and_list():
    bounded = answers.bounded_schema(answers.ANALYSIS_SCHEMA)
    props = bounded["properties"]
    assert props["summary"]["maxLength"] == answers.BOUNDED_TEXT
    assert props["strengths"]["maxItems"] == answers.BOUNDED_ITEMS
    assert props["strengths"]["items"]["maxLength"] == 160
    evidence = props["qualification"]["properties"]["budget"]["properties"]
    assert evidence["evidence"]["maxLength"] == answers.BOUNDED_TEXT
    assert "maxLength" not in evidence["status"]  # an enum is bounded already
    assert "maxLength" not in answers.ANALYSIS_SCHEMA["properties"]["summary"]  # a copy


def test_excerpt_of_what_the_model_wrote():
    openai = {"choices": [{"message": {"content": "  " + "x" * 300}, "finish_reason": "length"}]}
    assert answers.excerpt(openai) == "x" * 250
    anthropic = {"content": [{"type": "text", "text": "Sure! Here is"}]}
    assert answers.excerpt(anthropic) == "Sure! Here is"
    assert answers.excerpt(["not", "a", "body"]) == ""
    assert answers.excerpt({"choices": []}) == ""


def test_tool_calls_in_both_shapes():
    openai = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "function": {"name": "count", "arguments": '{"stage": 2}'}},
                        {"id": "c2", "function": {"name": "broken", "arguments": "{not json"}},
                        {"id": "c3", "function": {"name": "list", "arguments": "[1, 2]"}},
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3},
    }
    content, tokens_in, tokens_out = answers.parse_tool_calls("openai", openai)
    # arguments that are not a JSON object are left out, the others kept with their id
    assert json.loads(content) == {
        "text": "",
        "tool_calls": [{"id": "c1", "name": "count", "arguments": {"stage": 2}}],
    }
    assert (tokens_in, tokens_out) == (7, 3)
    anthropic = {
        "content": [
            {"type": "text", "text": "Let me count."},
            {"type": "tool_use", "id": "t1", "name": "count", "input": {"stage": 2}},
        ],
        "usage": {"input_tokens": 5, "output_tokens": 2},
    }
    content, tokens_in, tokens_out = answers.parse_tool_calls("anthropic", anthropic)
    assert json.loads(content) == {
        "text": "Let me count.",
        "tool_calls": [{"id": "t1", "name": "count", "arguments": {"stage": 2}}],
    }
    assert (tokens_in, tokens_out) == (5, 2)
    # the same Anthropic body read as an analysis: the tool's input is the JSON answer
    assert answers.parse_provider_body("anthropic", anthropic)[0] == '{"stage": 2}'
    for body in ({"choices": [{"message": {"content": " "}}]}, {"content": []}, "text"):
        with pytest.raises(answers.UnusableAnswer):
            answers.parse_tool_calls("anthropic" if "content" in body else "openai", body)
