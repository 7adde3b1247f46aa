"""What the `salad` command prints for a person (without --json): an evaluation's table, a selection round's
clusters, a run in one line."""

from __future__ import annotations

from salad_core.eval.vocabulary import ALL_TASKS, REPORT_METRICS


def format_eval(result: dict) -> str:
    cols = ("n", *REPORT_METRICS)
    lines = [f"run {result['run_id']}  (scoring: {result['scoring']}, {result['k_shot']}-shot, voice {result['voice']})",
             f"{'task':<14}" + "".join(f"{c:>14}" for c in cols)]
    for task, row in result["tasks"].items():
        cells = "".join(f"{'-' if row[c] is None else format(row[c], '.3f') if c != 'n' else row[c]:>14}" for c in cols)
        lines.append(f"{task:<14}{cells}")
        if row.get("parse_fail"):
            fails = ", ".join(f"{lane} {share:.3f}" for lane, share in row["parse_fail"].items())
            lines.append(f"{'':<14}answers matched to no option (counted wrong): {fails}")
    lines.append(f"corpus F = {_fmt(result['F'])}, M = {_fmt(result['M'])} nats/token (held-out documents); "
                 f"item_F = {_fmt(result['item_F'])}, item_M = {_fmt(result['item_M'])} (the tasks' dev items)")
    for domain, row in result.get("corpus", {}).items():
        if domain != ALL_TASKS:
            lines.append(f"  {domain:<14} F {_fmt(row['F'])}  M {_fmt(row['M'])}  ({row['m_tokens']} text positions)")
    if result.get("conditions"):
        lines.append(f"{'voice condition':<28}{'task':<14}{'n':>5}{'speech_acc':>12}{'gap':>9}  gap 95 % CI")
        for entry in result["conditions"]:
            for task, row in entry["tasks"].items():
                low, high = row["ci"].get("gap", [None, None])
                lines.append(f"{entry['condition']:<28}{task:<14}{row['n']:>5}{_fmt(row['speech_acc']):>12}"
                             f"{_fmt(row['gap']):>9}  [{_fmt(low)}, {_fmt(high)}]")
    return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def run_summary(kind: str, config: dict) -> str:
    """What a run is, in one line: a training run's preset, α, stage and seed; a round's strategy and budget; an
    evaluation's model."""
    if kind == "train":
        stage = f" stage {config.get('stage', 1)}" if config.get("stage", 1) != 1 else ""
        tag = f" tag {config['tag']}" if config.get("tag") else ""
        return f"{config.get('preset')} α={config.get('alpha')}{stage} seed {config.get('seed')}{tag}"
    if kind == "select":
        from salad_core.select.report import round_label

        return f"{round_label(config)} seed {config.get('seed')}"
    return f"{config.get('model_path') or config.get('preset')} · {config.get('voice')}"


def format_round(result: dict) -> str:
    lines = [f"round {result['round_id']} from {result['from_run']}: {result['strategy']}, γ = {result['gamma']:g}, "
             f"{result['selected_hours'] * 60:.1f} of {result['budget_hours'] * 60:.1f} min selected "
             f"({result['n_selected']} documents)",
             f"{'cluster':>7} {'domain':<12} {'size':>6} {'P_web':>7} {'M':>7} {'CER':>6} {'P_target':>9} {'picked':>7}"]
    for c in sorted(result["clusters"], key=lambda c: -(c["m"] or 0)):
        flag = " filtered" if c["filtered"] else ""
        lines.append(f"{c['id']:>7} {str(c['domain']):<12} {c['size']:>6} {c['p_web']:>7.3f} {_fmt(c['m']):>7} "
                     f"{_fmt(c['cer']):>6} {c['p_target']:>9.3f} {c['n_selected']:>7}{flag}")
    return "\n".join(lines)
