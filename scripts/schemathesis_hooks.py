"""Schemathesis extensions for the hub's contract run (scripts/api-contract.sh).

tus PATCH bodies are raw bytes (`application/offset+octet-stream`), a media type schemathesis does not
generate by itself: give it bytes.
"""
from hypothesis import strategies as st
import schemathesis

schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(min_size=1, max_size=4096))
