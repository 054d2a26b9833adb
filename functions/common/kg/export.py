"""Exporting the graph: GraphML (networkx, Gephi, yEd read it) and JSON Lines (one triple per line).

Both stream: rows come from server-side cursors and go straight to the output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TextIO
from xml.sax.saxutils import escape

from kg.graph import ExportNode, ExportTriple

# XML 1.0 forbids most control characters, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_NODE_KEYS = (("name", "string"), ("kind", "string"), ("aliases", "string"), ("concepts", "string"))
_EDGE_KEYS = (("predicate", "string"), ("type", "string"), ("confidence", "double"), ("sources", "string"),
              ("grounded", "boolean"))


def _text(value: object) -> str:
    return escape(_NOT_XML.sub("", str(value)))


def write_graphml(nodes: Iterable[ExportNode], triples: Iterable[ExportTriple], out: TextIO) -> tuple[int, int]:
    """Nodes carry name, kind, aliases and concepts ("level:name", joined by "; "); each triple is a
    directed edge subject -> object with predicate, type, confidence and sources. Returns (nodes, edges)."""
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write('<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n')
    for scope, keys in (("node", _NODE_KEYS), ("edge", _EDGE_KEYS)):
        for name, kind in keys:
            out.write(f'  <key id="{scope[0]}_{name}" for="{scope}" attr.name="{name}" attr.type="{kind}"/>\n')
    out.write('  <graph id="kg" edgedefault="directed">\n')
    node_count = edge_count = 0
    for node in nodes:
        out.write(f'    <node id="{node.id}">'
                  f'<data key="n_name">{_text(node.name)}</data>'
                  f'<data key="n_kind">{node.kind}</data>'
                  f'<data key="n_aliases">{_text("; ".join(node.aliases))}</data>'
                  f'<data key="n_concepts">{_text("; ".join(node.concepts))}</data></node>\n')
        node_count += 1
    for t in triples:
        out.write(f'    <edge id="{t.id}" source="{t.subject_id}" target="{t.object_id}">'
                  f'<data key="e_predicate">{_text(t.predicate)}</data>'
                  f'<data key="e_type">{t.type}</data>'
                  f'<data key="e_confidence">{t.confidence:.4f}</data>'
                  f'<data key="e_sources">{_text("; ".join(t.sources))}</data>'
                  f'<data key="e_grounded">{str(t.grounded).lower()}</data></edge>\n')
        edge_count += 1
    out.write("  </graph>\n</graphml>\n")
    return node_count, edge_count


def write_jsonl(triples: Iterable[ExportTriple], out: TextIO) -> int:
    count = 0
    for t in triples:
        out.write(json.dumps(t.model_dump(mode="json"), ensure_ascii=False) + "\n")
        count += 1
    return count


