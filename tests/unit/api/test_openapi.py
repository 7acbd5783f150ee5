"""docs/openapi.json is the API's own document: regenerate it when this fails.

    PYTHONPATH=. python -c "import json; from producer.api.app import openapi_document; \\
      open('docs/openapi.json','w').write(json.dumps(openapi_document(), indent=2, sort_keys=True)+'\\n')"
"""

from __future__ import annotations

import json
from pathlib import Path

from producer.api.app import openapi_document
from producer.core.models.providers import PROVIDERS

DOC = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"


def test_committed_document_matches_the_app():
    assert json.loads(DOC.read_text()) == json.loads(json.dumps(openapi_document())), \
        "docs/openapi.json drifted from producer/api: regenerate it (see this module's docstring)"


def test_each_provider_request_model_is_in_the_document():
    schemas = openapi_document()["components"]["schemas"]
    for spec in PROVIDERS.values():
        assert spec.request_model.__name__ in schemas
        assert set(spec.request_model.model_fields) <= set(schemas[spec.request_model.__name__]["properties"])
