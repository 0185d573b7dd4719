"""The OpenAPI 3.1 document of the insights API, written by hand so that it says what the API
promises rather than what a generator guesses. ``tests/web/api/test_api.py`` checks that every
route of the blueprint is in it (and nothing else), and that answers match the schemas."""

from __future__ import annotations

from typing import Any

COUNT = {"type": ["integer", "null"], "minimum": 0, "description": "null: hidden (suppressed)"}
RATE = {"type": ["number", "null"], "description": "null: not shown (group below the threshold)"}
LABEL = {
    "type": "array",
    "description": "[code, label]",
    "prefixItems": [{"type": "string"}, {"type": "string"}],
    "minItems": 2,
    "maxItems": 2,
}
PERIOD = {"type": "string", "pattern": r"^\d{4}-Q[1-4]$", "examples": ["2026-Q1"]}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
            }
        },
    },
    "Periods": {
        "type": "object",
        "required": ["periods"],
        "properties": {
            "periods": {
                "type": "array",
                "description": "Released quarters, oldest first.",
                "items": {
                    "type": "object",
                    "required": ["period", "url"],
                    "properties": {"period": PERIOD, "url": {"type": "string"}},
                },
            }
        },
    },
    "View": {
        "type": "object",
        "description": (
            "A published table. cells[i][j] is the count of row i and column j; a 1-D view has "
            "one column and row_totals null."
        ),
        "required": ["name", "rows", "columns", "cells", "row_totals", "column_totals", "total"],
        "properties": {
            "name": {"type": "string"},
            "rows": {"type": "array", "items": LABEL},
            "columns": {"type": "array", "items": LABEL},
            "cells": {"type": "array", "items": {"type": "array", "items": COUNT}},
            "row_totals": {"type": ["array", "null"], "items": COUNT},
            "column_totals": {"type": ["array", "null"], "items": COUNT},
            "total": COUNT,
        },
    },
    "Durations": {
        "type": "object",
        "description": "Whole days, over at least threshold cases.",
        "required": ["median", "p90"],
        "properties": {"median": RATE, "p90": RATE},
    },
    "Release": {
        "type": "object",
        "description": (
            "A stored release, exactly as published. total null: fewer than threshold cases, "
            "and no views."
        ),
        "required": [
            "period",
            "kind",
            "as_of",
            "threshold",
            "total",
            "views",
            "durations",
            "headcounts",
        ],
        "properties": {
            "period": PERIOD,
            "kind": {"type": "string", "enum": ["volume", "progress"]},
            "as_of": {"type": "string", "format": "date"},
            "threshold": {"type": "integer", "minimum": 3},
            "total": COUNT,
            "views": {
                "type": "object",
                "additionalProperties": {"$ref": "#/components/schemas/View"},
            },
            "durations": {
                "type": "object",
                "additionalProperties": {"$ref": "#/components/schemas/Durations"},
            },
            "headcounts": {
                "type": "object",
                "description": "Configured headcounts of the units shown (configuration).",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": {"type": "integer"},
                },
            },
        },
    },
    "Kpis": {
        "type": "object",
        "required": [
            "period",
            "total",
            "per_100_employees",
            "anonymous_share",
            "follow_up_rate",
            "substantiation_rate",
            "acknowledged_on_time",
            "feedback_on_time",
            "open_cases",
            "close_days",
        ],
        "properties": {
            "period": PERIOD,
            "total": COUNT,
            "per_100_employees": RATE,
            "anonymous_share": RATE,
            "follow_up_rate": RATE,
            "substantiation_rate": RATE,
            "acknowledged_on_time": RATE,
            "feedback_on_time": RATE,
            "open_cases": COUNT,
            "close_days": {"$ref": "#/components/schemas/Durations"},
        },
    },
    "Quarter": {
        "type": "object",
        "required": ["period", "volume", "progress", "kpis"],
        "properties": {
            "period": PERIOD,
            "volume": {"$ref": "#/components/schemas/Release"},
            "progress": {
                "oneOf": [{"$ref": "#/components/schemas/Release"}, {"type": "null"}],
            },
            "kpis": {"$ref": "#/components/schemas/Kpis"},
        },
    },
    "OneView": {
        "type": "object",
        "required": ["period", "kind", "as_of", "threshold", "view"],
        "properties": {
            "period": PERIOD,
            "kind": {"type": "string", "enum": ["volume", "progress"]},
            "as_of": {"type": "string", "format": "date"},
            "threshold": {"type": "integer", "minimum": 3},
            "view": {"$ref": "#/components/schemas/View"},
        },
    },
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


ERRORS = {
    "401": _json("Error", "No token, or an unknown, revoked or expired one."),
    "403": _json("Error", "The token's owner may not read insights."),
    "429": _json("Error", "Too many requests with a bad token from this client."),
}
NOT_FOUND = {"404": _json("Error", "No such released quarter (or view).")}
PERIOD_PARAMETER = {
    "name": "period",
    "in": "path",
    "required": True,
    "schema": PERIOD,
    "description": "A released calendar quarter, e.g. 2026-Q1.",
}

#: The schema of the 200 answer of each path, for the tests.
RESPONSE_SCHEMAS = {
    "/insights/periods": "Periods",
    "/insights/{period}": "Quarter",
    "/insights/{period}/kpis": "Kpis",
    "/insights/{period}/{view}": "OneView",
    "/openapi.json": None,
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Portal insights API",
            "version": "1",
            "description": (
                "Aggregate figures per calendar quarter, already protected by disclosure "
                "control: the same stored releases as the insights pages. A hidden count is "
                "null. See docs/api.md."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal token (pti_...) made on the account page.",
                }
            },
            "schemas": SCHEMAS,
        },
        "paths": {
            "/insights/periods": {
                "get": {
                    "operationId": "listPeriods",
                    "summary": "Released quarters, oldest first",
                    "responses": {"200": _json("Periods", "The released quarters."), **ERRORS},
                }
            },
            "/insights/{period}": {
                "get": {
                    "operationId": "getQuarter",
                    "summary": "The whole volume and progress release of a quarter, with KPIs",
                    "parameters": [PERIOD_PARAMETER],
                    "responses": {
                        "200": _json("Quarter", "Both releases and the KPIs."),
                        **ERRORS,
                        **NOT_FOUND,
                    },
                }
            },
            "/insights/{period}/kpis": {
                "get": {
                    "operationId": "getKpis",
                    "summary": "The key figures of a quarter",
                    "parameters": [PERIOD_PARAMETER],
                    "responses": {"200": _json("Kpis", "The KPIs."), **ERRORS, **NOT_FOUND},
                }
            },
            "/insights/{period}/{view}": {
                "get": {
                    "operationId": "getView",
                    "summary": "One view of a quarter's volume or progress release",
                    "parameters": [
                        PERIOD_PARAMETER,
                        {
                            "name": "view",
                            "in": "path",
                            "required": True,
                            "schema": {
                                "type": "string",
                                "examples": ["category", "outcome"],
                            },
                            "description": "A view name, as in the release's views.",
                        },
                    ],
                    "responses": {"200": _json("OneView", "The view."), **ERRORS, **NOT_FOUND},
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document (no token needed)",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
    }
