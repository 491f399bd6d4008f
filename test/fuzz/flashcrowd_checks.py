"""flashcrowd's own schemathesis checks (loaded with SCHEMATHESIS_HOOKS=flashcrowd_checks).

- no_uninjected_server_error: a 5xx is a bug unless the chaos engine made it up
  (X-Flashcrowd-Fault on the answer), or the checkout ran out of the budget the
  request itself gave it (X-Request-Deadline-Ms under a second, reason
  `*deadline_exceeded`: the dependency call was never made).
- error_body_names_the_field: every 4xx is a JSON object with a string `reason`;
  a 400, 413 or 431 also names each bad field in `errors` ([{field, reason}]).
- admin_token_enforced: with FLASHCROWD_FUZZ_NO_TOKEN=1 (the run without the
  token), every admin route answers 401 admin_token_required.
"""
import json
import os

import schemathesis

FAULT_HEADER = "x-flashcrowd-fault"
NAMED = {400, 413, 431}


def _body(response):
    try:
        return json.loads(response.content or b"")
    except ValueError:
        return None


def _is_admin(case):
    path = case.operation.path
    return path.startswith("/__") or path.startswith("/admin/")


def _own_deadline(case, body):
    """A deadline the request set itself, under a second, ran out before a dependency call."""
    headers = {k.lower(): v for k, v in (case.headers or {}).items()}
    try:
        budget = float(headers.get("x-request-deadline-ms", ""))
    except ValueError:
        return False
    reason = body.get("reason") if isinstance(body, dict) else None
    return budget < 1000 and isinstance(reason, str) and reason.endswith("deadline_exceeded")


@schemathesis.check
def no_uninjected_server_error(ctx, response, case):
    """A 5xx the chaos engine did not inject."""
    if response.status_code < 500 or FAULT_HEADER in {k.lower() for k in response.headers}:
        return
    if _own_deadline(case, _body(response)):
        return
    raise AssertionError(
        f"{response.status_code} not injected by the chaos engine: {response.content[:500]!r}"
    )


@schemathesis.check
def error_body_names_the_field(ctx, response, case):
    """A 4xx without a JSON body, a reason, or (400/413/431) the fields named."""
    status = response.status_code
    if not 400 <= status < 500:
        return
    body = _body(response)
    if not isinstance(body, dict) or not isinstance(body.get("reason"), str) or not body["reason"]:
        raise AssertionError(f"{status} without a JSON body with a reason: {response.content[:300]!r}")
    if status in NAMED:
        errors = body.get("errors")
        ok = (
            isinstance(errors, list)
            and errors
            and all(isinstance(e, dict) and isinstance(e.get("field"), str) and e["field"] for e in errors)
        )
        if not ok:
            raise AssertionError(f"{status} {body['reason']} names no field: {body!r}"[:600])


@schemathesis.check
def admin_token_enforced(ctx, response, case):
    """An admin route that answered without the token."""
    if os.environ.get("FLASHCROWD_FUZZ_NO_TOKEN") != "1" or not _is_admin(case):
        return
    body = _body(response) or {}
    if response.status_code != 401 or body.get("reason") != "admin_token_required":
        raise AssertionError(
            f"admin route answered {response.status_code} without the token: {response.content[:300]!r}"
        )
