## The status page of ccdash-migrate serve. Every ${...} is HTML-escaped (default_filters in web.py).
<%!
    COLOURS = {"applied": "#2e7d32", "pending": "#b26a00", "failed": "#c62828"}

    def ms(value):
        return "-" if value is None else f"{value:,} ms"
%>\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CCDash migrations</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px 32px; color: #1d1d1f; background: #fafafa; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  h2 { font-size: 16px; margin: 28px 0 8px; }
  .muted { color: #666; }
  .callout { border-left: 5px solid; padding: 8px 12px; margin: 10px 0; background: #fff; border-radius: 3px; }
  .callout.bad { border-color: #c62828; background: #fdecea; }
  .callout.warn { border-color: #b26a00; background: #fff4e0; }
  .callout.good { border-color: #2e7d32; background: #e8f5e9; }
  dl.summary { display: grid; grid-template-columns: max-content auto; gap: 4px 16px; margin: 12px 0; }
  dl.summary dt { font-weight: 600; }
  dl.summary dd { margin: 0; font-family: ui-monospace, Menlo, monospace; }
  /* Long names, paths and messages wrap (anywhere, if they must) so that the page never scrolls sideways. */
  dl.summary dd, .callout, td { overflow-wrap: anywhere; }
  .panels { display: flex; flex-wrap: wrap; gap: 32px; align-items: flex-start; }
  .panel { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 12px 16px; max-width: 100%; box-sizing: border-box; overflow-x: auto; }
  table { border-collapse: collapse; background: #fff; width: 100%; }
  th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #e5e5e5; vertical-align: top; }
  td.mono, td.num, td.word { white-space: nowrap; }
  th { background: #f0f0f0; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  td.mono, dd.mono { font-family: ui-monospace, Menlo, monospace; }
  .panel h2 { margin-top: 0; }
  tr.row-failed { background: #fdecea; }
  .state-applied, .status-success { color: #2e7d32; font-weight: 600; }
  .state-pending, .status-rolled_back { color: #b26a00; font-weight: 600; }
  .state-failed, .status-failed { color: #c62828; font-weight: 600; }
  svg text { font: 12px ui-monospace, Menlo, monospace; fill: #1d1d1f; }
  svg text.label { white-space: pre; }
  .legend span { margin-right: 14px; }
  .dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 4px; }
</style>
</head>
<body>
<h1>CCDash migrations</h1>
<div class="muted">Read at ${generated}. This page changes nothing; reload it to read again.</div>

% if error:
<div class="callout bad" id="error"><strong>The database could not be read:</strong> ${error}</div>
% endif
% if state:
<dl class="summary">
  <dt>Database</dt><dd id="database">${state.database}${"" if state.exists else " (does not exist yet)"}</dd>
  % if state.server_version:
  <dt>Engine</dt><dd id="engine">PostgreSQL ${state.server_version}</dd>
  % endif
  <dt>Current</dt><dd id="current">${", ".join(state.current) or "base"}</dd>
  <dt>Head</dt><dd>${", ".join(state.heads)}</dd>
</dl>
  % if state.in_use_by:
<div class="callout warn" id="in-use"><strong>In use:</strong> the database is open in ${state.in_use_by}, so only the revision files are shown. Reload when it is free.</div>
  % endif
  % if state.migration_running:
<div class="callout warn" id="migrating"><strong>Migration running:</strong> ${state.migration_running} is migrating the database; what it has committed so far is shown. Reload to follow it.</div>
  % endif
  % if state.dirty:
<div class="callout bad" id="dirty"><strong>Dirty:</strong> revision ${state.dirty[0]} ran outside a transaction and did not finish (since ${state.dirty[1].strftime("%Y-%m-%d %H:%M")} UTC). Check the database, then run <code>ccdash-migrate repair</code> or restore a backup.</div>
  % endif
  % if state.drift:
<div class="callout bad" id="drift"><strong>Changed after they were applied:</strong> ${", ".join(state.drift)}. Restore the files, or accept them with <code>-x accept_changed=true</code>.</div>
  % endif
  % if state.version_mismatch:
<div class="callout bad" id="version-mismatch"><strong>Records disagree:</strong> ${state.version_mismatch}. Check which is right, then run <code>ccdash-migrate repair</code> (it rewrites schema_version from alembic_version).</div>
  % endif
  % if state.unrecorded:
<div class="callout bad" id="unrecorded"><strong>Applied without a history row:</strong> ${", ".join(state.unrecorded)}. Changes to their files cannot be detected; <code>ccdash-migrate repair</code> records them.</div>
  % endif
  % for failure in reversed(state.failures):
<div class="callout bad failure" id="${'failure' if failure is state.last_failure else 'failure-' + failure.version}"><strong>${"Last failure" if failure is state.last_failure else "Failure"}:</strong> revision ${failure.version} (${failure.name}) at ${failure.applied_at.strftime("%Y-%m-%d %H:%M:%S")} UTC: ${failure.error_message}. <span class="remedy">${state.failure_remedy(failure)[0].upper() + state.failure_remedy(failure)[1:]}.</span></div>
  % endfor
  % if state.pending and not state.in_use_by:
<div class="callout warn" id="pending"><strong>${len(state.pending)} pending:</strong> ${", ".join(r.revision for r in state.pending)}. Run <code>ccdash-migrate up</code>.</div>
  % elif not state.in_use_by:
<div class="callout good" id="up-to-date">Up to date: every revision is applied.</div>
  % endif

<div class="panels">
<div class="panel">
<h2>Revisions</h2>
<div class="legend">
  % for name, colour in COLOURS.items():
  <span><span class="dot" style="background: ${colour}"></span>${name}</span>
  % endfor
</div>
<svg id="graph" role="img" aria-label="revision graph" width="${graph_width + label_width}" height="${graph_height + 10}" viewBox="0 0 ${graph_width + label_width} ${graph_height + 10}" xmlns="http://www.w3.org/2000/svg">
  % for edge in edges:
  <line x1="${edge.x1}" y1="${edge.y1}" x2="${edge.x2}" y2="${edge.y2}" stroke="#999" stroke-width="2"/>
  % endfor
  % for node in nodes:
  <g class="node" data-revision="${node.revision.revision}" data-state="${node.revision.state}">
    <title>${node.revision.revision} ${node.revision.name} (${node.revision.state})</title>
    <circle cx="${node.x}" cy="${node.y}" r="8" fill="${COLOURS[node.revision.state]}" stroke="#fff" stroke-width="2"/>
    <text class="label" x="${graph_width}" y="${node.y + 4}">${node.revision.revision}  <tspan class="state-${node.revision.state}" fill="${COLOURS[node.revision.state]}">${node.revision.state}</tspan>  ${node.name_lines[0]}</text>
    % for i, line in enumerate(node.name_lines[1:], start=1):
    <text class="label more" x="${graph_width}" y="${node.y + 4 + i * line_height}">${" " * node.label_prefix}${line}</text>
    % endfor
  </g>
  % endfor
</svg>
</div>

<div class="panel">
<h2>Execution time per revision</h2>
  % if timed:
<svg id="timings" role="img" aria-label="execution time per revision" width="560" height="${len(timed) * 26 + 10}" xmlns="http://www.w3.org/2000/svg">
    % for i, (revision, width) in enumerate(timed):
  <g class="bar" data-revision="${revision.revision}" data-ms="${revision.execution_time_ms}">
    <title>${revision.revision} ${revision.name}: ${ms(revision.execution_time_ms)}</title>
    <text x="0" y="${i * 26 + 18}">${revision.revision}</text>
    <rect x="120" y="${i * 26 + 6}" height="16" width="${width}" fill="#3f6fb5"/>
    <text x="${126 + width}" y="${i * 26 + 18}">${ms(revision.execution_time_ms)}</text>
  </g>
    % endfor
</svg>
  % else:
<p class="muted">No upgrade has been timed on this database yet.</p>
  % endif
</div>
</div>

<h2>History</h2>
  % if state.history:
<table id="history">
<thead><tr><th>Time (UTC)</th><th>Direction</th><th>Revision</th><th>Name</th><th>Duration</th><th>Status</th><th>Checksum</th><th>Error or note</th></tr></thead>
<tbody>
    % for step in reversed(state.history):
<tr class="row-${step.status}">
  <td class="mono">${step.applied_at.strftime("%Y-%m-%d %H:%M:%S")}</td><td class="word">${step.direction}</td><td class="mono">${step.version}</td><td>${step.name}</td>
  <td class="num">${ms(step.execution_time_ms)}</td><td class="word status-${step.status}">${step.status}</td><td class="mono">${(step.checksum or "")[:12]}</td><td>${step.error_message or step.note or ""}</td>
</tr>
    % endfor
</tbody>
</table>
  % else:
<p class="muted">No steps recorded on this database yet.</p>
  % endif
% endif
</body>
</html>
