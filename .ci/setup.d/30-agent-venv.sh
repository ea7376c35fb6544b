#!/usr/bin/env bash
# The LangGraph agent's own environment (examples/requirements.txt: langchain-mcp-adapters,
# which needs mcp<2), for tests/e2e/test_langgraph.py. Built here, before the tests, so the
# test suite itself never reaches the network; .ci/run points SQLGATE_TEST_AGENT_VENV at it.
# Reused while examples/requirements.txt is unchanged (.complete holds the file it was built from).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${SQLGATE_TEST_AGENT_VENV:?set SQLGATE_TEST_AGENT_VENV to the directory to build}"
if [ -f "$VENV/.complete" ] && cmp -s "$VENV/.complete" examples/requirements.txt; then
  echo "agent venv: $VENV (up to date)"
  exit 0
fi
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r examples/requirements.txt
cp examples/requirements.txt "$VENV/.complete"
echo "agent venv: $VENV (built)"
