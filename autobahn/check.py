#!/usr/bin/env python3
"""Judge an Autobahn|Testsuite report directory against the project's strict bar.

Usage:
    python3 autobahn/check.py [--role server|client] [--agent NAME]
                              [--expected FILE | --no-expected] DIR

DIR is a wstest outdir (it holds index.json and one <agent>_case_*.json per case), e.g.
autobahn/reports/server-blocking/. --role only labels the summary (default: taken from a
"server-"/"client-" prefix of DIR's name, else "server"). --agent picks the agent in
index.json (default: the only one there). --expected defaults to autobahn/expected.json.

The strict bar, applied to every case in the report:
  * `behavior` and `behaviorClose` must each be OK or INFORMATIONAL;
  * UNIMPLEMENTED is never accepted: permessage-deflate (sections 12 and 13) is on by
    default, so a case reported UNIMPLEMENTED means the offer was declined;
  * anything else (NON-STRICT, FAILED, WRONG CODE, ...) fails the case.
In addition every case is compared with expected.json (case id -> {"behavior",
"behaviorClose"}): a result that differs from its expectation fails, and so does an
expected case that the run selected (per DIR/spec.json, written by run.sh) but that has
no result. Cases without an expectation are judged by the bar alone.

Output: first exactly one line
    autobahn server (NAME): N passed, N failed
then one block per failing case: its id, behavior/behaviorClose, the expectation, and
wstest's own description and verdict for the case. Exit status 0 if nothing failed, 1 if
something did, 2 on unusable input.
"""

import argparse
import json
import os
import re
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
GOOD = {"OK", "INFORMATIONAL"}


def case_key(case_id):
    return tuple(int(p) for p in case_id.split("."))


def acceptable(value):
    return value in GOOD


def pattern_matcher(patterns):
    """wstest's case patterns: '*' is a wildcard, everything else literal."""
    regexes = [re.compile("^" + re.escape(p).replace(r"\*", ".*") + "$") for p in patterns]
    return lambda case_id: any(r.match(case_id) for r in regexes)


def selected_by_spec(spec_path, case_ids):
    """Case ids (from case_ids) that the run's spec selected; None if unknown."""
    try:
        with open(spec_path) as f:
            spec = json.load(f)
    except (OSError, ValueError):
        return None
    include = pattern_matcher(spec.get("cases", []))
    exclude = pattern_matcher(spec.get("exclude-cases", []))
    return {c for c in case_ids if include(c) and not exclude(c)}


def squash(text, limit=400):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def case_details(outdir, entry):
    """Description and verdict texts from the per-case JSON (best effort)."""
    name = entry.get("reportfile")
    if not name:
        return {}
    try:
        with open(os.path.join(outdir, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def main():
    ap = argparse.ArgumentParser(
        description="Check an Autobahn|Testsuite report against the strict bar.")
    ap.add_argument("dir", metavar="DIR", help="wstest outdir containing index.json")
    ap.add_argument("--role", choices=["server", "client"])
    ap.add_argument("--agent")
    ap.add_argument("--expected", default=os.path.join(HERE, "expected.json"))
    ap.add_argument("--no-expected", action="store_true",
                    help="apply only the strict bar, not expected.json")
    args = ap.parse_args()

    outdir = args.dir
    role = args.role
    if role is None:
        base = os.path.basename(os.path.normpath(outdir))
        role = "client" if base.startswith("client-") else "server"

    try:
        with open(os.path.join(outdir, "index.json")) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        print("autobahn %s (%s): cannot read index.json: %s" % (role, args.agent or "?", e))
        return 2

    agent = args.agent
    if agent is None:
        if len(index) != 1:
            print("autobahn %s (?): index.json has agents %s; pass --agent"
                  % (role, sorted(index)))
            return 2
        agent = next(iter(index))
    if agent not in index:
        print("autobahn %s (%s): no results for this agent in index.json (agents: %s)"
              % (role, agent, ", ".join(sorted(index)) or "none"))
        return 2
    results = index[agent]

    expected = {}
    if not args.no_expected:
        try:
            with open(args.expected) as f:
                expected = json.load(f)
        except (OSError, ValueError) as e:
            print("autobahn %s (%s): cannot read %s: %s" % (role, agent, args.expected, e))
            return 2

    problems = {}  # case id -> list of reasons

    for case_id in sorted(results, key=case_key):
        entry = results[case_id]
        got = (entry.get("behavior"), entry.get("behaviorClose"))
        reasons = []
        if not (acceptable(got[0]) and acceptable(got[1])):
            reasons.append("strict bar")
        exp = expected.get(case_id)
        if exp is not None and got != (exp.get("behavior"), exp.get("behaviorClose")):
            reasons.append("differs from expected.json")
        if reasons:
            problems[case_id] = reasons

    missing = []
    if expected:
        selected = selected_by_spec(os.path.join(outdir, "spec.json"), expected)
        if selected is not None:
            missing = sorted(selected - set(results), key=case_key)

    total = len(results) + len(missing)
    failed = len(problems) + len(missing)
    print("autobahn %s (%s): %d passed, %d failed" % (role, agent, total - failed, failed))

    wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="      ")
    for case_id in sorted(problems, key=case_key):
        entry = results[case_id]
        exp = expected.get(case_id)
        line = "%s %s/%s" % (case_id, entry.get("behavior"), entry.get("behaviorClose"))
        if exp is not None:
            line += " (expected %s/%s)" % (exp.get("behavior"), exp.get("behaviorClose"))
        line += " [%s]" % ", ".join(problems[case_id])
        print(line)
        details = case_details(outdir, entry)
        if details.get("description"):
            print(wrap.fill("description: " + squash(details["description"])))
        if details.get("result"):
            print(wrap.fill("result: " + squash(details["result"], 200)))
        if details.get("resultClose"):
            print(wrap.fill("close: " + squash(details["resultClose"], 200)))
        if entry.get("reportfile"):
            print("    report: %s" % os.path.join(outdir, entry["reportfile"].replace(".json", ".html")))
    for case_id in missing:
        exp = expected[case_id]
        print("%s no result (expected %s/%s) [missing]"
              % (case_id, exp.get("behavior"), exp.get("behaviorClose")))

    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
