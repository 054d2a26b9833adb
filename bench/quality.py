"""Extraction quality on the WebNLG development set (../shared/quality/webnlg-dev.jsonl).

    .venv/bin/python bench/quality.py                      # the offline extractor
    .venv/bin/python bench/quality.py --extractor openai   # the LLM extractor: OPENAI_API_KEY (and
                                                           # OPENAI_BASE_URL, KG_LLM_MODEL) as for kg
    .venv/bin/python bench/quality.py --show 20            # also print 20 texts with what was missed

Each text is one chunk; the entity-entity triples are scored, since the references are facts
between entities and values (the other three types are reported as counts only). Scoring: see
bench/_quality_score.py. The corpus is CC BY-NC-SA 4.0 (Gardent et al., 2017; Castro Ferreira
et al., 2018): it is read from ../shared and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, machine  # noqa: E402
from _quality_score import (  # noqa: E402
    Tally,
    Triple3,
    as_triple,
    ends_matched,
    predicate_misses,
    roc_auc,
    score_text,
    text_stems,
)

from kg.models import Chunk, LlmUsage, TripleType  # noqa: E402
from kg.nlp import load_spacy  # noqa: E402
from kg.settings import Settings  # noqa: E402

DATA = REPO.parent / "shared" / "quality" / "webnlg-dev.jsonl"
BANDS = (0.0, 0.5, 0.65, 0.8, 0.9, 1.01)


def build_extractor(kind: str):
    from kg import providers

    settings = Settings(llm_provider=kind)
    if kind == "openai" and not settings.openai_api_key:
        sys.exit("--extractor openai needs OPENAI_API_KEY (and OPENAI_BASE_URL for another compatible endpoint)")
    return providers.default_extractor(settings), settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--extractor", choices=("offline", "openai"), default="offline")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N texts")
    ap.add_argument("--show", type=int, default=0, help="print N texts whose references were not all found")
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = ap.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data} not found: the quality set lives in ../shared/quality (see its README)")

    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.limit:
        rows = rows[: args.limit]
    extractor, settings = build_extractor(args.extractor)
    nlp = load_spacy(settings.spacy_model)
    lemma_cache: dict[str, list[str]] = {}

    def lemmatise(text: str) -> list[str]:
        if text not in lemma_cache:
            lemma_cache[text] = [t.lemma_.lower() for t in nlp(text)]
        return lemma_cache[text]

    overall = Tally()
    by_size: dict[int, Tally] = {}
    other_types: Counter[str] = Counter()
    failed_passes: Counter[str] = Counter()
    confidences: list[float] = []
    right_triple: list[bool] = []
    right_ends: list[bool] = []
    misses: list[str] = []
    missed_predicates: list[tuple[str, bool]] = []  # (reference predicate, its word written in the text)
    tokens = 0
    extract_s = 0.0
    usage = LlmUsage()
    for k, row in enumerate(rows):
        text = row["text"]
        chunk = Chunk(document_id=row["id"], index=0, text=text, start_char=0, end_char=len(text), tokens=0)
        tokens += len(nlp.tokenizer(text))
        started = time.perf_counter()
        extraction = extractor.extract(chunk, list(TripleType))
        extract_s += time.perf_counter() - started
        usage = usage.add(extraction.usage)
        failed_passes.update(t.value for t in extraction.failed_types)  # a pass that raised: a bug, not a score
        ee = [t for t in extraction.triples if t.type == TripleType.ENTITY_ENTITY]
        other_types.update(t.type.value for t in extraction.triples if t.type != TripleType.ENTITY_ENTITY)
        predicted = [as_triple(t.subject, t.predicate, t.object, lemmatise) for t in ee]
        reference: list[Triple3] = [as_triple(s, p, o, lemmatise) for s, p, o in row["triples"]]
        scored = score_text(predicted, reference)
        overall.add(scored.tally)
        by_size.setdefault(len(reference), Tally()).add(scored.tally)
        ends = {i for i, _ in ends_matched(predicted, reference)}
        missed_predicates += [(row["triples"][j][1], written)
                              for j, written in predicate_misses(predicted, reference, text_stems(text, lemmatise))]
        for i, t in enumerate(ee):
            confidences.append(t.confidence)
            right_triple.append(scored.correct[i])
            right_ends.append(i in ends)
        if args.show and scored.tally.found_triples < len(reference) and len(misses) < args.show:
            got = "\n".join(f"      got  ({t.subject} | {t.predicate} | {t.object}) {t.confidence}" for t in ee)
            want = "\n".join(f"      want ({s} | {p} | {o})" for s, p, o in row["triples"])
            misses.append(f"[{k}] {text}\n{want}\n{got or '      got  nothing'}")

    report = {
        "extractor": args.extractor,
        "texts": overall.texts,
        "entity_prf": overall.entity_prf(),
        "triple_prf": overall.triple_prf(),
        "relation_prf": overall.ends_prf(),
        "triples_per_text": round(overall.predicted_triples / max(1, overall.texts), 2),
        "texts_with_none": overall.texts_empty,
        "by_size": {
            size: {
                "texts": t.texts,
                "entity_prf": t.entity_prf(),
                "relation_prf": t.ends_prf(),
                "triple_prf": t.triple_prf(),
                "none": t.texts_empty,
            }
            for size, t in sorted(by_size.items())
        },
        "other_types": dict(other_types),
        "failed_passes": dict(failed_passes),
        "confidence": _confidence_report(confidences, right_triple, right_ends),
        "predicate_misses": _misses_report(missed_predicates, overall),
        "extract_tokens_per_s": round(tokens / extract_s, 1) if extract_s else None,
        "llm_usage": usage.model_dump(),
        "model": settings.llm_model if args.extractor == "openai" else settings.spacy_model,
        "machine": machine(),
    }
    for line in misses:
        print(line)
    _print(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def _confidence_report(conf: list[float], right_triple: list[bool], right_ends: list[bool]) -> dict:
    bands = []
    for lo, hi in zip(BANDS, BANDS[1:], strict=False):
        idx = [i for i, c in enumerate(conf) if lo <= c < hi]
        if idx:
            bands.append(
                {
                    "band": f"{lo:.2f}-{min(hi, 1.0):.2f}",
                    "triples": len(idx),
                    "triple_precision": round(sum(right_triple[i] for i in idx) / len(idx), 3),
                    "ends_precision": round(sum(right_ends[i] for i in idx) / len(idx), 3),
                }
            )
    return {"auc_triple": roc_auc(conf, right_triple), "auc_ends": roc_auc(conf, right_ends), "bands": bands}


def _misses_report(missed: list[tuple[str, bool]], overall: Tally) -> dict:
    """The right pairs whose predicate missed, split by whether the reference's word is in the text,
    and the triple F1 the extractor would reach if every one of the first kind were met."""
    written = sum(w for _, w in missed)
    ceiling = Tally(found_triples=overall.found_triples + written, predicted_triples=overall.predicted_triples,
                    reference_triples=overall.reference_triples)
    return {
        "pairs": len(missed),
        "word_in_text": written,
        "word_not_in_text": Counter(p for p, w in missed if not w).most_common(8),
        "triple_f1_if_the_written_met": ceiling.triple_prf()[2],
    }


def _print(r: dict) -> None:
    ep, rp, tp = r["entity_prf"], r["relation_prf"], r["triple_prf"]
    print(f"extractor {r['extractor']} ({r['model']}), {r['texts']} texts (entity-entity triples scored)")
    print(f"  entity  P {ep[0]:.3f}  R {ep[1]:.3f}  F1 {ep[2]:.3f}")
    print(f"  relation P {rp[0]:.3f}  R {rp[1]:.3f}  F1 {rp[2]:.3f}   (subject and object, in order)")
    print(f"  triple  P {tp[0]:.3f}  R {tp[1]:.3f}  F1 {tp[2]:.3f}   (and the predicate: a shared stem or derived noun)")
    print(f"  triples per text {r['triples_per_text']}, texts with none {r['texts_with_none']}")
    print("  size  texts  entity F1  relation F1  triple F1  none")
    for size, s in r["by_size"].items():
        print(
            f"  {size:>4}  {s['texts']:>5}  {s['entity_prf'][2]:>9.3f}  {s['relation_prf'][2]:>11.3f}"
            f"  {s['triple_prf'][2]:>9.3f}  {s['none']:>4}"
        )
    c = r["confidence"]
    print(f"  confidence AUC: whole triple {c['auc_triple']}, both ends {c['auc_ends']}")
    for b in c["bands"]:
        print(f"    {b['band']}  n={b['triples']:>4}  triple P {b['triple_precision']:.3f}  ends P {b['ends_precision']:.3f}")
    m = r["predicate_misses"]
    absent = ", ".join(f"{p} {n}" for p, n in m["word_not_in_text"])
    print(f"  predicate misses: {m['pairs']} right pairs; the reference's word in the text for {m['word_in_text']},"
          f" not for {m['pairs'] - m['word_in_text']} ({absent}, ...); triple F1 if the first met:"
          f" {m['triple_f1_if_the_written_met']}")
    print(f"  other types: {r['other_types']}")
    if r["failed_passes"]:
        print(f"  PASSES THAT RAISED (texts): {r['failed_passes']}")
    print(f"  extract: {r['extract_tokens_per_s']} tokens/s (one text per call)")
    if r["llm_usage"]["calls"]:
        u = r["llm_usage"]
        print(f"  llm: {u['calls']} calls, {u['input_tokens']} in / {u['output_tokens']} out tokens, ${u['cost_usd']:.4f}")


if __name__ == "__main__":
    main()
