// One server: its backend (or each version's), whether it answers, its tools, its rates, and
// for a server with versions its routing, with promote, preview and retire.

import { useId, useState, type FormEvent } from 'react';
import { describe, get, request, seg, type Answer } from '../api';
import type { BackendConfig, PolicyBinding, ServerConfig, ServerSummary, ToolList, Versions } from '../types';
import { Badge, ErrorNotice, Loading, Notice, useLoad } from '../ui';
import { useCanChange } from '../role';
import type { Rate } from './Servers';

type Tools = Record<string, ToolList | { failed: string }>;

/** The tools of the server, or of each version, from the backend (cached by the gateway unless `refresh`). */
async function loadTools(name: string, versions: (string | null)[], refresh: boolean, signal: AbortSignal): Promise<Tools> {
  const out: Tools = {};
  await Promise.all(
    versions.map(async (v) => {
      const q = new URLSearchParams();
      if (v) q.set('version', v);
      if (refresh) q.set('refresh', 'true');
      const qs = q.toString();
      try {
        const a = await get<ToolList>(`/api/servers/${seg(name)}/tools${qs ? `?${qs}` : ''}`, signal);
        out[v ?? ''] = a.body;
      } catch (e) {
        if (signal.aborted) throw e;
        out[v ?? ''] = { failed: describe(e) };
      }
    }),
  );
  return out;
}

export function backendText(b: BackendConfig | undefined): { kind: string; where: string } {
  if (!b) return { kind: 'none', where: '' };
  if (b.http) return { kind: 'Streamable HTTP', where: b.http };
  if (b.sse) return { kind: 'HTTP+SSE', where: b.sse };
  if (b.stdio) return { kind: 'stdio', where: [b.stdio.command, ...(b.stdio.args ?? [])].join(' ') };
  if (b.openapi) return { kind: 'OpenAPI', where: String(b.openapi.spec ?? b.openapi.base_url ?? '') };
  return { kind: 'unknown', where: '' };
}

function chainText(p: PolicyBinding[] | undefined): string {
  return p && p.length > 0 ? p.map((b) => b.policy).join(' → ') : 'none';
}

/** One version's traffic in a line. */
function versionRate(r: Rate | undefined): string {
  if (!r) return 'No requests yet';
  return `${fmtRate(r.requestRate)} requests/s, ${fmtRate(r.errorRate)} errors/s (${r.requests} requests, ${r.errors} errors in all)`;
}

function fmtRate(r: number | null): string {
  return r === null ? '…' : r < 10 ? r.toFixed(2) : r.toFixed(1);
}

export function ServerCard({ summary, rate, generation }: { summary: ServerSummary; rate: Rate | null; generation: number }) {
  const name = summary.name;
  const headingId = useId();
  const versionNames = summary.versions ?? null;
  const [refreshes, setRefreshes] = useState(0);
  const config = useLoad((signal) => get<ServerConfig>(`/api/servers/${seg(name)}`, signal), [name, summary.etag, generation]);
  const tools = useLoad(
    (signal) => loadTools(name, versionNames ?? [null], refreshes > 0, signal),
    [name, summary.etag, generation, refreshes, (versionNames ?? []).join(',')],
  );
  const versions = useLoad(
    (signal) => (versionNames ? get<Versions>(`/api/servers/${seg(name)}/versions`, signal) : Promise.resolve(null)),
    [name, summary.etag, generation, versionNames !== null],
  );

  const toolLists = tools.data ? Object.values(tools.data) : [];
  const reachable = toolLists.length > 0 && toolLists.every((t) => 'reachable' in t && t.reachable);
  const status = tools.loading && !tools.data ? null : reachable;

  return (
    <section className="card server" aria-labelledby={headingId}>
      <div className="card-head">
        <h2 id={headingId}>{name}</h2>
        {status === null ? (
          <Badge tone="neutral">Checking…</Badge>
        ) : status ? (
          <Badge tone="good">Reachable</Badge>
        ) : (
          <Badge tone="bad">{versionNames ? 'Not all versions reachable' : 'Unreachable'}</Badge>
        )}
        {summary.from_api && <Badge tone="info">set through the API</Badge>}
      </div>
      {summary.description && <p className="muted">{summary.description}</p>}
      <dl className="stats" aria-label={`Traffic of ${name}`}>
        <div>
          <dt>Requests</dt>
          <dd>{rate ? `${fmtRate(rate.requestRate)}/s` : '—'}</dd>
        </div>
        <div>
          <dt>Errors</dt>
          <dd>{rate ? `${fmtRate(rate.errorRate)}/s` : '—'}</dd>
        </div>
        <div>
          <dt>Since start</dt>
          <dd>{rate ? `${rate.requests} requests, ${rate.errors} errors` : '—'}</dd>
        </div>
      </dl>
      <ErrorNotice error={config.error} />
      {!versionNames && (
        <>
          <dl className="facts">
            <div className="wide">
              <dt>Backend</dt>
              <dd>
                <BackendLine backend={config.data?.body.backend} />
              </dd>
            </div>
            <div>
              <dt>Policies</dt>
              <dd>{config.data ? chainText(config.data.body.policies) : '…'}</dd>
            </div>
            <div>
              <dt>Routing</dt>
              <dd>default (no versions)</dd>
            </div>
          </dl>
          <ToolsOf list={tools.data?.['']} loading={tools.loading} label={`Tools of ${name}`} />
        </>
      )}
      {versionNames && (
        <Routing
          name={name}
          versions={versions.data}
          error={versions.error}
          reload={versions.reload}
          config={config.data?.body ?? null}
          tools={tools.data}
          rates={rate?.versions ?? null}
        />
      )}
      <div className="toolbar">
        <button type="button" className="secondary small" onClick={() => setRefreshes((n) => n + 1)} aria-label={`Ask ${name} for its tools again`}>
          Refresh tools
        </button>
        <button
          type="button"
          className="secondary small"
          onClick={() => {
            config.reload();
            versions.reload();
            tools.reload();
          }}
          aria-label={`Reload ${name}`}
        >
          Reload
        </button>
      </div>
    </section>
  );
}

function BackendLine({ backend }: { backend: BackendConfig | undefined }) {
  if (!backend) return <>…</>;
  const b = backendText(backend);
  return (
    <>
      {b.kind} {b.where && <code className="break">{b.where}</code>}
    </>
  );
}

function ToolsOf({ list, loading, label, nested }: { list: ToolList | { failed: string } | undefined; loading: boolean; label: string; nested?: boolean }) {
  const Heading = nested ? 'h4' : 'h3';
  if (!list) return loading ? <Loading what="tools" /> : null;
  if ('failed' in list) return <p className="field-error">The tools could not be read: {list.failed}</p>;
  return (
    <div className="tools">
      {!list.reachable && <p className="field-error">The backend does not answer{list.error ? `: ${list.error}` : ''}.</p>}
      <Heading className="small-heading">
        Tools <span className="muted">({list.tools.length})</span>
      </Heading>
      {list.tools.length > 0 ? (
        <ul aria-label={label} className="tool-list">
          {list.tools.map((t) => (
            <li key={t.name}>
              <code>{t.name}</code>
              {(t.title || t.description) && <span className="muted"> {t.title ?? t.description}</span>}
            </li>
          ))}
        </ul>
      ) : (
        list.reachable && <p className="muted">No tools.</p>
      )}
    </div>
  );
}

interface RoutingProps {
  name: string;
  versions: Answer<Versions> | null;
  error: unknown;
  reload: () => void;
  config: ServerConfig | null;
  tools: Tools | null;
  /** Each version's rates; null until traffic is read. */
  rates: Record<string, Rate> | null;
}

/** The routing of a server with versions, each version, and the changes: ETag in, ETag out. */
function Routing({ name, versions, error, reload, config, tools, rates }: RoutingProps) {
  const [busy, setBusy] = useState(false);
  const canChange = useCanChange();
  const [failure, setFailure] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const [previewVersion, setPreviewVersion] = useState('');
  const [share, setShare] = useState('10');
  const shareId = useId();
  const previewId = useId();

  if (error) return <ErrorNotice error={error} />;
  if (!versions) return <Loading what="versions" />;
  const { routing, versions: list } = versions.body;

  const change = async (what: string, path: string, method: string, body?: unknown) => {
    setBusy(true);
    setFailure(null);
    setDone(null);
    try {
      await request<Versions>(`/api/servers/${seg(name)}${path}`, { method, body, ifMatch: versions.etag });
      setDone(what);
    } catch (e) {
      setFailure(e);
    } finally {
      setBusy(false);
      reload();
    }
  };

  const candidates = list.filter((v) => !v.default && !v.retired);
  const chosen = previewVersion || routing.preview?.version || candidates[0]?.name || '';
  const setPreview = (e: FormEvent) => {
    e.preventDefault();
    const n = Number(share);
    if (!chosen || !Number.isInteger(n) || n < 0 || n > 100) {
      setFailure(new Error('Choose a version and a share from 0 to 100.'));
      return;
    }
    void change(`Preview set: ${chosen} for ${n} % of new sessions.`, '/preview', 'PUT', {
      version: chosen,
      share: n,
      subscriptions: routing.preview?.subscriptions ?? [],
    });
  };

  return (
    <div className="routing">
      <dl className="facts">
        <div>
          <dt>Default</dt>
          <dd>{routing.default_version}</dd>
        </div>
        <div>
          <dt>Preview</dt>
          <dd>
            {routing.preview
              ? `${routing.preview.version}, ${routing.preview.share} % of new sessions${routing.preview.subscriptions?.length ? ` and ${routing.preview.subscriptions.length} subscription(s)` : ''}`
              : 'none'}
          </dd>
        </div>
        <div>
          <dt>Retired</dt>
          <dd>{routing.retired.length ? routing.retired.join(', ') : 'none'}</dd>
        </div>
      </dl>
      {failure ? <ErrorNotice error={failure} /> : null}
      {done && <Notice kind="ok">{done}</Notice>}
      <ul className="versions" aria-label={`Versions of ${name}`}>
        {list.map((v) => {
          const vc = config?.versions?.find((c) => c.name === v.name);
          return (
            <li key={v.name} className="version">
              <div className="card-head">
                <h3>{v.name}</h3>
                {v.default && <Badge tone="good">default</Badge>}
                {v.preview && <Badge tone="info">preview {routing.preview?.share ?? 0} %</Badge>}
                {v.retired && <Badge tone="warn">retired</Badge>}
                <ToolStatus list={tools?.[v.name]} />
              </div>
              <p className="muted" aria-label={`Traffic of ${name} ${v.name}`}>
                {rates ? versionRate(rates[v.name]) : 'Traffic not read yet'}
              </p>
              <dl className="facts">
                <div className="wide">
                  <dt>Backend</dt>
                  <dd>
                    <BackendLine backend={vc?.backend} />
                  </dd>
                </div>
                <div>
                  <dt>Policies</dt>
                  <dd>{vc ? chainText(vc.policies) : '…'}</dd>
                </div>
                <div>
                  <dt>URL</dt>
                  <dd>
                    <code>{v.url}</code>
                  </dd>
                </div>
              </dl>
              <ToolsOf list={tools?.[v.name]} loading={!tools} label={`Tools of ${name} ${v.name}`} nested />
              {canChange && <div className="toolbar">
                {!v.default && !v.retired && (
                  <button type="button" disabled={busy} aria-label={`Promote ${v.name}`} onClick={() => change(`${v.name} is now the default.`, `/versions/${seg(v.name)}/promote`, 'POST')}>
                    Promote
                  </button>
                )}
                {!v.default && !v.preview && !v.retired && (
                  <button type="button" className="danger" disabled={busy} aria-label={`Retire ${v.name}`} onClick={() => change(`${v.name} is retired.`, `/versions/${seg(v.name)}/retire`, 'POST')}>
                    Retire
                  </button>
                )}
                {v.retired && (
                  <button type="button" className="secondary" disabled={busy} aria-label={`Reinstate ${v.name}`} onClick={() => change(`${v.name} serves again.`, `/versions/${seg(v.name)}/reinstate`, 'POST')}>
                    Reinstate
                  </button>
                )}
              </div>}
            </li>
          );
        })}
      </ul>
      {canChange && <form className="inline-form" onSubmit={setPreview} aria-label={`Preview of ${name}`}>
        <div className="field">
          <label htmlFor={previewId}>Preview version</label>
          <select id={previewId} value={chosen} onChange={(e) => setPreviewVersion(e.target.value)}>
            {candidates.map((v) => (
              <option key={v.name} value={v.name}>
                {v.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field narrow">
          <label htmlFor={shareId}>Share (%)</label>
          <input id={shareId} type="number" min={0} max={100} step={1} value={share} onChange={(e) => setShare(e.target.value)} />
        </div>
        <button type="submit" disabled={busy || candidates.length === 0}>
          Set preview
        </button>
        {routing.preview && (
          <button type="button" className="secondary" disabled={busy} onClick={() => change('The preview has ended.', '/preview', 'DELETE')}>
            End preview
          </button>
        )}
      </form>}
    </div>
  );
}

function ToolStatus({ list }: { list: ToolList | { failed: string } | undefined }) {
  if (!list) return null;
  if ('failed' in list || !list.reachable) return <Badge tone="bad">Unreachable</Badge>;
  return <Badge tone="good">Reachable</Badge>;
}
