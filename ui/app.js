// devflow's page for people: the inbox of gates waiting for a person, every run with its live
// state, and a run's page to read what is being approved and decide. A thin client of the public
// API (the same calls the CLI makes), written with Preact and htm: no build step, nothing fetched
// from the internet.
import { h, render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';

const html = htm.bind(h);
const TOKEN_KEY = 'devflow-api-token';
/** One id per page load: a decision sent twice from this page is the same decision. */
const PAGE_ID = Math.random().toString(36).slice(2, 10);

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

async function api(path, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch(path, {
    ...options,
    headers: { ...(options.body ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}), ...options.headers },
  });
  const text = await response.text();
  const body = response.headers.get('content-type')?.includes('json') && text ? JSON.parse(text) : text;
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/** Server-sent events through fetch (EventSource cannot send the bearer token). */
async function followEvents(runId, after, onEvent, signal) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch(`/v1/runs/${runId}/events?after=${after}`, {
    headers: { accept: 'text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    signal,
  });
  if (!response.ok || !response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split('\n').find((line) => line.startsWith('data: '));
      if (data) onEvent(JSON.parse(data.slice(6)));
    }
  }
}

// ---- small pieces --------------------------------------------------------------------------
const localTime = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
function since(iso) {
  const seconds = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}
const State = ({ value }) => html`<span class=${`state ${value}`}>${value.replaceAll('_', ' ')}</span>`;
const short = (id) => id.slice(0, 8);
const TERMINAL = new Set(['completed', 'failed', 'aborted']);

function usePoll(load, everyMs, deps) {
  const [data, setData] = useState(undefined);
  const [error, setError] = useState(undefined);
  useEffect(() => {
    let stopped = false;
    const tick = async () => {
      try {
        const value = await load();
        if (!stopped) {
          setData(value);
          setError(undefined);
        }
      } catch (e) {
        if (!stopped) setError(e);
      }
    };
    tick();
    const timer = setInterval(tick, everyMs);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, deps);
  return [data, error];
}

// ---- the token ----------------------------------------------------------------------------
function TokenForm({ onSaved, failed }) {
  const [value, setValue] = useState('');
  return html`<section class="card">
    <h2>This devflow needs its API token</h2>
    <p class="muted">The API was started with <code>DEVFLOW_API_TOKEN</code>. The token stays in this browser tab only.</p>
    ${failed ? html`<p class="error" role="alert">That token was refused.</p>` : null}
    <form onSubmit=${(e) => { e.preventDefault(); sessionStorage.setItem(TOKEN_KEY, value); onSaved(); }}>
      <label for="token">API token</label>
      <input id="token" type="password" autocomplete="off" value=${value} onInput=${(e) => setValue(e.target.value)} />
      <div class="actions"><button type="submit">Use this token</button></div>
    </form>
  </section>`;
}

// ---- the inbox ----------------------------------------------------------------------------
function Inbox() {
  const [pending] = usePoll(() => api('/v1/approvals'), 2000, []);
  const [list] = usePoll(() => api('/v1/runs?limit=50'), 2000, []);
  return html`
    <section class="card" aria-labelledby="inbox-title">
      <h2 id="inbox-title">Waiting for a person</h2>
      ${!pending ? html`<p class="muted">Loading…</p>` : pending.approvals.length === 0 ? html`<p class="muted">No gate is waiting. Nothing to decide.</p>` : html`
        <table>
          <thead><tr><th>run</th><th>gate</th><th>kind</th><th>phase</th><th>waiting</th><th>repository</th></tr></thead>
          <tbody>${pending.approvals.map((a) => html`<tr>
            <td><a href=${`#/runs/${a.runId}`}>${short(a.runId)}</a></td>
            <td>${a.gateKey}</td>
            <td>${a.payload.kind ?? 'approval'}</td>
            <td>${a.phaseKey ?? '—'}</td>
            <td title=${localTime(a.createdAt)}>${since(a.createdAt)}</td>
            <td class="muted">${a.run.repoPath}@${a.run.baseBranch}</td>
          </tr>`)}</tbody>
        </table>`}
    </section>
    <section class="card" aria-labelledby="runs-title">
      <h2 id="runs-title">Runs</h2>
      ${!list ? html`<p class="muted">Loading…</p>` : list.runs.length === 0 ? html`<p class="muted">No run yet. Start one with <code>npm run devflow -- start …</code> or <code>POST /v1/runs</code>.</p>` : html`
        <table>
          <thead><tr><th>run</th><th>state</th><th>template</th><th>started</th><th>repository</th></tr></thead>
          <tbody>${list.runs.map((r) => html`<tr>
            <td><a href=${`#/runs/${r.id}`}>${short(r.id)}</a></td>
            <td><${State} value=${r.state} /></td>
            <td>${r.templateId}</td>
            <td>${localTime(r.createdAt)}</td>
            <td class="muted">${r.repoPath}@${r.baseBranch}</td>
          </tr>`)}</tbody>
        </table>`}
    </section>`;
}

// ---- artifacts, rendered for reading --------------------------------------------------------
const List = ({ items, render: each, ordered }) => (items?.length ? (ordered ? html`<ol>${items.map((i) => html`<li>${each(i)}</li>`)}</ol>` : html`<ul>${items.map((i) => html`<li>${each(i)}</li>`)}</ul>`) : html`<p class="muted">none</p>`);

function ArtifactBody({ schemaId, content }) {
  if (!content || typeof content !== 'object') return null;
  if (schemaId.startsWith('dev/spec@')) {
    return html`<article class="spec">
      <h3 class="spec-title">${content.title}</h3>
      <p>${content.summary}</p>
      <h3>Requirements</h3><${List} ordered items=${content.requirements} render=${(r) => html`<strong>${r.id}</strong> ${r.text}`} />
      <h3>Acceptance criteria</h3><${List} items=${content.acceptanceCriteria} render=${(t) => t} />
      <h3>Out of scope</h3><${List} items=${content.outOfScope} render=${(t) => t} />
      <h3>Open questions</h3><${List} items=${content.openQuestions} render=${(t) => t} />
    </article>`;
  }
  if (schemaId.startsWith('dev/implementation@')) {
    return html`<article>
      <p>${content.summary}</p>
      <h3>Files changed</h3><${List} items=${content.filesChanged} render=${(f) => html`<code>${f.path}</code> (${f.change})`} />
      <h3>Commits</h3><${List} items=${content.commits} render=${(c) => html`<code>${c}</code>`} />
      <h3>Tests run</h3><${List} items=${content.testsRun} render=${(t) => html`<code>${t.command}</code> — ${t.passed ? 'passed' : 'FAILED'}`} />
      ${content.notes ? html`<h3>Notes</h3><p>${content.notes}</p>` : null}
    </article>`;
  }
  if (schemaId.startsWith('dev/review@')) {
    return html`<article>
      <p><strong>Verdict: ${content.verdict?.replaceAll('_', ' ')}</strong></p>
      <p>${content.summary}</p>
      <h3>Findings</h3><${List} items=${content.findings} render=${(f) => html`<strong>${f.severity}</strong>${f.file ? html` <code>${f.file}</code>` : ''}: ${f.message}`} />
    </article>`;
  }
  return null;
}

function Artifact({ runId, artifact, phaseKey }) {
  const [loaded, setLoaded] = useState(undefined);
  useEffect(() => {
    api(`/v1/runs/${runId}/artifacts/${artifact.id}`).then(setLoaded, (e) => setLoaded({ error: e.message }));
  }, [artifact.id]);
  const problems = artifact.validationError?.errors ?? [];
  return html`<section class="card artifact" data-phase=${phaseKey}>
    <h3>${phaseKey}: ${artifact.schemaId} <${State} value=${artifact.valid ? 'completed' : 'failed'} /> <span class="muted">${artifact.valid ? 'valid' : 'invalid'} · sha256 ${artifact.hash.slice(0, 12)}</span></h3>
    ${problems.length ? html`<ul class="error">${problems.map((p) => html`<li>${p}</li>`)}</ul>` : null}
    ${!loaded ? html`<p class="muted">Loading…</p>` : loaded.error ? html`<p class="error">${loaded.error}</p>` : html`
      ${loaded.changed ? html`<p class="error">The file changed (or is gone) since it was validated.</p>` : null}
      <${ArtifactBody} schemaId=${artifact.schemaId} content=${loaded.content} />
      <details><summary>JSON</summary><pre>${loaded.text ?? '(no file)'}</pre></details>`}
  </section>`;
}

// ---- a gate and its decision ----------------------------------------------------------------
function Gate({ runId, gate, phaseKey, onDecided }) {
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState(undefined);
  const decide = async (action) => {
    setBusy(true);
    try {
      const answer = await api(`/v1/runs/${runId}/approvals/${gate.id}`, {
        method: 'POST',
        body: JSON.stringify({ action, clientToken: `page-${PAGE_ID}-${gate.id}-${action}`, ...(comment ? { comment } : {}), decidedBy: 'devflow page' }),
      });
      setOutcome({ ok: `${answer.action === 'approve' ? 'Approved' : answer.action === 'reject' ? 'Rejected' : 'Aborted'} ${gate.gateKey}.` });
      onDecided();
    } catch (e) {
      setOutcome({ error: e.status === 409 ? `Not recorded: ${e.message}.` : e.message });
    } finally {
      setBusy(false);
    }
  };
  const kind = gate.payload.kind ?? 'approval';
  return html`<section class="card gate" aria-labelledby=${`gate-${gate.id}`}>
    <h2 id=${`gate-${gate.id}`}>${gate.state === 'pending' ? 'Waiting at gate' : 'Gate'} <code>${gate.gateKey}</code> <span class="muted">(${kind}${phaseKey ? `, phase ${phaseKey}` : ''}, for ${since(gate.createdAt)})</span></h2>
    ${gate.payload.reason ? html`<p class="gate-reason"><strong>Why:</strong> ${gate.payload.reason}</p>` : null}
    ${gate.payload.hint ? html`<pre class="gate-hint">${gate.payload.hint}</pre>` : null}
    <p class="muted">${kind === 'approval' ? 'Approve to go on to the next phase; reject ends the run failed; abort ends it aborted.' : 'Approve to try the phase again; reject ends the run failed; abort ends it aborted.'}</p>
    <label for=${`comment-${gate.id}`}>Comment (kept with the decision)</label>
    <textarea id=${`comment-${gate.id}`} rows="2" value=${comment} onInput=${(e) => setComment(e.target.value)}></textarea>
    <div class="actions">
      <button class="approve" disabled=${busy} onClick=${() => decide('approve')}>Approve</button>
      <button class="reject" disabled=${busy} onClick=${() => decide('reject')}>Reject</button>
      <button class="abort" disabled=${busy} onClick=${() => decide('abort')}>Abort</button>
    </div>
    ${outcome?.ok ? html`<p class="notice" role="status">${outcome.ok}</p>` : null}
    ${outcome?.error ? html`<p class="error" role="alert">${outcome.error}</p>` : null}
  </section>`;
}

// ---- a run --------------------------------------------------------------------------------
function Transcript({ runId, session }) {
  const [text, setText] = useState(undefined);
  return html`<details onToggle=${(e) => e.target.open && api(`/v1/runs/${runId}/sessions/${session.id}/transcript`).then((t) => setText(t.text), (err) => setText(err.message))}>
    <summary>${session.roleId}: transcript</summary>
    <pre>${text ?? 'Loading…'}</pre>
  </details>`;
}

function RunPage({ runId, config }) {
  const [detail, setDetail] = useState(undefined);
  const [error, setError] = useState(undefined);
  const [events, setEvents] = useState([]);
  const [report, setReport] = useState(undefined);
  const reload = useCallback(() => api(`/v1/runs/${runId}`).then((d) => { setDetail(d); setError(undefined); }, setError), [runId]);
  const pending = useRef(false);
  // A gate decided on this page stays in view with its outcome (a second click shows what the API says).
  const [decidedHere, setDecidedHere] = useState({});

  useEffect(() => {
    reload();
    const controller = new AbortController();
    // Live: every event appends to the list and refreshes the run (batched).
    followEvents(runId, 0, (event) => {
      setEvents((list) => [...list.slice(-199), event]);
      if (!pending.current) {
        pending.current = true;
        setTimeout(() => { pending.current = false; reload(); }, 150);
      }
    }, controller.signal).catch(() => undefined);
    const timer = setInterval(reload, 5000);
    return () => { controller.abort(); clearInterval(timer); };
  }, [runId]);

  if (error) return html`<p class="error" role="alert">${error.message}</p>`;
  if (!detail) return html`<p class="muted">Loading run ${short(runId)}…</p>`;
  const { run } = detail;
  const phaseOf = new Map(detail.phases.map((p) => [p.id, p.phaseKey]));
  const usage = new Map(detail.usage.phases.map((u) => [u.phaseKey, u]));
  const gates = detail.approvals.filter((a) => a.state === 'pending' || decidedHere[a.id]);
  const webUi = config.temporalWebUi ? `${config.temporalWebUi}/namespaces/${config.namespace}/workflows/devflow-run:${run.id}` : null;
  return html`
    <p><a href="#/">← all runs</a></p>
    <section class="card">
      <h2>Run <code>${run.id}</code> <${State} value=${run.state} /></h2>
      <p class="muted">${run.templateId} on ${run.repoPath}@${run.baseBranch} · started ${localTime(run.createdAt)}${run.endedAt ? ` · ended ${localTime(run.endedAt)}` : ''}</p>
      <p class="muted">In a terminal: <code>npm run devflow -- watch ${run.id}</code>${webUi ? html` · <a href=${webUi}>its execution in the Temporal Web UI</a>` : null}</p>
      ${!TERMINAL.has(run.state) && !detail.approvals.some((a) => a.state === 'pending') ? html`<div class="actions"><button class="abort" onClick=${() => api(`/v1/runs/${run.id}/abort`, { method: 'POST', body: JSON.stringify({ clientToken: `page-${PAGE_ID}-abort`, reason: 'aborted from the devflow page' }) }).then(reload)}>Abort run</button></div>` : null}
    </section>
    ${gates.map((g) => html`<${Gate} key=${g.id} runId=${run.id} gate=${g} phaseKey=${g.phaseId ? phaseOf.get(g.phaseId) : null} onDecided=${() => { setDecidedHere((d) => ({ ...d, [g.id]: true })); reload(); }} />`)}
    <section class="card">
      <h2>Phases</h2>
      <table class="phases">
        <thead><tr><th>phase</th><th>role</th><th>state</th><th>attempts</th><th>tokens in / out</th></tr></thead>
        <tbody>${detail.phases.map((p) => html`<tr data-phase=${p.phaseKey}>
          <td>${p.phaseKey}</td><td>${p.roleId}</td><td class="phase-state"><${State} value=${p.state} /></td><td>${p.attempts}</td>
          <td>${usage.get(p.phaseKey) ? `${usage.get(p.phaseKey).inputTokens} / ${usage.get(p.phaseKey).outputTokens}` : '—'}</td>
        </tr>`)}</tbody>
      </table>
      <p class="muted">Usage: ${detail.usage.total.inputTokens} input and ${detail.usage.total.outputTokens} output tokens (from the agents' own logs).</p>
    </section>
    <h2>Artifacts</h2>
    ${detail.artifacts.length === 0 ? html`<p class="muted">No artifact yet.</p>` : [...detail.artifacts].reverse().map((a) => html`<${Artifact} key=${a.id} runId=${run.id} artifact=${a} phaseKey=${phaseOf.get(a.phaseId)} />`)}
    <section class="card">
      <h2>Agents</h2>
      <table>
        <thead><tr><th>role</th><th>agent</th><th>state</th><th>conversation</th></tr></thead>
        <tbody>${detail.sessions.map((s) => html`<tr><td>${s.roleId}</td><td>${s.backend}${s.playback ? ' (playback model)' : ''}</td><td><${State} value=${s.state} /></td><td class="muted">${s.agentSessionId ?? '—'}</td></tr>`)}</tbody>
      </table>
      ${detail.sessions.map((s) => html`<${Transcript} key=${s.id} runId=${run.id} session=${s} />`)}
    </section>
    <section class="card">
      <h2>Events</h2>
      <div class="events" aria-live="polite">${events.map((e) => html`<div>${String(e.seq).padStart(4, ' ')} ${new Date(e.createdAt).toLocaleTimeString()} ${e.type} ${e.payload?.phaseKey ?? ''}</div>`)}</div>
    </section>
    ${detail.finalReportPath ? html`<section class="card">
      <details onToggle=${(e) => e.target.open && !report && api(`/v1/runs/${run.id}/report`).then(setReport, (err) => setReport(err.message))}>
        <summary>Final report</summary><pre>${report ?? 'Loading…'}</pre>
      </details></section>` : null}`;
}

// ---- the app -------------------------------------------------------------------------------
function App() {
  const [route, setRoute] = useState(location.hash);
  const [config, setConfig] = useState(undefined);
  const [auth, setAuth] = useState({ needed: false, failed: false, version: 0 });
  useEffect(() => {
    const onHash = () => setRoute(location.hash);
    addEventListener('hashchange', onHash);
    fetch('/ui/config.json').then((r) => r.json()).then(setConfig);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  // Ask for the token when one is needed and none works yet.
  useEffect(() => {
    if (!config) return;
    api('/v1/runs?limit=1').then(
      () => setAuth((a) => ({ ...a, needed: false })),
      (e) => setAuth((a) => ({ ...a, needed: e.status === 401, failed: e.status === 401 && Boolean(sessionStorage.getItem(TOKEN_KEY)) })),
    );
  }, [config, auth.version]);
  if (!config) return html`<p class="muted">Loading devflow…</p>`;
  const runMatch = /^#\/runs\/([0-9a-f-]{36})/.exec(route);
  return html`
    <header class="top"><h1><a href="#/">devflow</a></h1><span class="muted">gates, runs and what their agents wrote</span></header>
    ${auth.needed ? html`<${TokenForm} failed=${auth.failed} onSaved=${() => setAuth((a) => ({ ...a, version: a.version + 1 }))} />`
      : runMatch ? html`<${RunPage} key=${runMatch[1]} runId=${runMatch[1]} config=${config} />` : html`<${Inbox} key=${auth.version} />`}`;
}

render(html`<${App} />`, document.getElementById('app'));
