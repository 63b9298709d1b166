"""JSON log lines carry the request's correlation id and the record's extra fields."""

from __future__ import annotations

import json
import logging

from learnloop.logs import JsonFormatter, request_id_var


def test_json_lines_carry_request_id_and_extras() -> None:
    record = logging.LogRecord("learnloop.api", logging.INFO, __file__, 1, "job %s", ("x",), None)
    record.job_id = "j-1"
    token = request_id_var.set("req-42")
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["msg"] == "job x" and line["level"] == "info"
    assert line["request_id"] == "req-42" and line["job_id"] == "j-1"
    outside = json.loads(JsonFormatter().format(record))
    assert "request_id" not in outside
