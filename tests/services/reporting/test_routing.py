"""Routing rules: category, coarse attributes, English and Chinese keywords, priority, order."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.errors import TaxonomyError
from portal.models import Case, Priority
from portal.services.configuration import taxonomy
from portal.services.reporting import routing
from portal.services.reporting.routing import keyword_in
from portal.settings import PROJECT_ROOT
from tests.support.factories import Portal


@pytest.mark.parametrize(
    ("keyword", "text", "hit"),
    [
        ("bribe", "He asked me for a bribe.", True),
        ("bribe", "BRIBE!", True),
        ("pay", "the repayment plan", False),  # whole words only for Latin keywords
        ("fire exit", "The fire   exit is locked", True),  # spaces collapse
        ("fire exit", "fire exits", False),
        ("贿赂", "经理收受贿赂多次", True),  # Chinese matches inside a sentence
        ("回扣", "他拿了供应商的回扣。", True),
        ("回扣", "他拿了供应商的礼物。", False),
        ("gas leak", "ｇａｓ ｌｅａｋ in hall 3", True),  # full-width Latin folded
        ("café", "CAFÉ rules", True),
    ],
)
def test_keyword_matching(keyword: str, text: str, hit: bool) -> None:
    assert keyword_in(keyword, routing._normalise(text)) is hit


def _rule_for(db: Session, category: str, text: str) -> routing.RuleMatch:
    return routing.match_rule(db, taxonomy.category_by_code(db, category), None, None, text)


def test_default_rules_route_by_keyword_and_set_priority(portal: Portal, db: Session) -> None:
    urgent = _rule_for(db, "safety", "仓库里有化学品泄漏，很多人头晕")
    assert urgent.queue.slug == "safety" and urgent.priority is Priority.URGENT
    assert urgent.keyword == "泄漏"
    plain = _rule_for(db, "safety", "The stairs are slippery.")
    assert plain.queue.slug == "safety" and plain.priority is Priority.NORMAL
    bribery = _rule_for(db, "other", "Suppliers pay kickbacks to the buyer.")
    assert bribery.queue.slug == "ethics" and bribery.priority is Priority.HIGH
    nothing = _rule_for(db, "other", "The canteen food is cold.")
    assert nothing.rule is None and nothing.queue.slug == "general"


def test_first_matching_rule_wins(portal: Portal, db: Session) -> None:
    data = taxonomy.read_taxonomy_file(PROJECT_ROOT / "config" / "taxonomy.toml")
    data["routing"] = [
        {"keywords": ["ceo"], "queue": "board", "priority": "high"},
        {"category": "harassment", "queue": "hr"},
    ]
    taxonomy.load_taxonomy(db, data)
    hit = _rule_for(db, "harassment", "The CEO shouts at people.")
    assert hit.queue.slug == "board" and hit.priority is Priority.HIGH
    assert _rule_for(db, "harassment", "My manager shouts.").queue.slug == "hr"


def test_priority_from_rule_is_stored_but_not_the_match(portal: Portal, db: Session) -> None:
    portal.staff("sam", queues=("safety", "general"))
    submitted = portal.submit(category_code="safety", description="There was a gas leak today.")
    case = db.scalar(select(Case).where(Case.id == submitted.case_id))
    assert case is not None and case.priority == Priority.URGENT
    assert submitted.queue_slug == "safety"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"queue": "hr", "keywords": "bribe"}, "list of strings"),
        ({"queue": "hr", "keywords": ["x" * 101]}, "longer than 100"),
        ({"queue": "hr", "priority": "asap"}, "unknown priority"),
        ({"queue": "hr", "colour": "red"}, "unknown keys"),
    ],
)
def test_bad_rules_are_refused(
    db: Session, portal: Portal, rule: dict[str, object], message: str
) -> None:
    data = taxonomy.read_taxonomy_file(PROJECT_ROOT / "config" / "taxonomy.toml")
    data["routing"] = [rule]
    with pytest.raises(TaxonomyError, match=message):
        taxonomy.load_taxonomy(db, data)
