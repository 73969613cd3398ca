// Policies: the chain in force for a server or a version, each binding's config; the chain as
// YAML to edit and apply live (checked by the API and by each policy's own init); components
// uploaded for bindings to name.

import { useEffect, useId, useState, type FormEvent } from 'react';
import { ApiError, describe, get, request, seg } from '../api';
import { chainToYaml, lineOf, yamlToChain } from '../chainYaml';
import type { PolicyBinding, ServerSummary } from '../types';
import { Badge, Choice, ErrorNotice, Json, Loading, Notice, PageHeading, useLoad } from '../ui';
import { useCanChange } from '../role';
import { Components } from './Components';

/** A server without versions (`name`), or one version of a server (`name@version`). */
interface Target {
  value: string;
  label: string;
  path: string;
}

function targets(servers: ServerSummary[]): Target[] {
  const out: Target[] = [];
  for (const s of servers) {
    if (s.versions && s.versions.length > 0) {
      for (const v of s.versions) {
        out.push({ value: `${s.name}@${v}`, label: `${s.name}, version ${v}`, path: `/api/servers/${seg(s.name)}/versions/${seg(v)}/policies` });
      }
    } else {
      out.push({ value: s.name, label: s.name, path: `/api/servers/${seg(s.name)}/policies` });
    }
  }
  return out;
}

export function Policies() {
  const servers = useLoad((signal) => get<{ servers: ServerSummary[] }>('/api/servers', signal), []);
  const all = targets(servers.data?.body.servers ?? []);
  const [chosen, setChosen] = useState('');
  const [inserted, setInserted] = useState<string | null>(null);
  const target = all.find((t) => t.value === chosen) ?? all[0] ?? null;

  return (
    <>
      <PageHeading>Policies</PageHeading>
      <p className="muted">
        Each server, or each version of a server, runs its own chain. A chain applied here is checked as <code>tollgate validate</code> checks a file and by each
        policy's own init, then put in force for every next request, live sessions included; it wins over the config file's until handed back.
      </p>
      <ErrorNotice error={servers.error} />
      {servers.loading && !servers.data && <Loading what="servers" />}
      {servers.data && all.length === 0 && <p>No servers are configured.</p>}
      {all.length > 0 && <Choice label="Server" options={all} value={target?.value ?? ''} onChange={setChosen} />}
      {target && <ChainEditor key={target.value} target={target} insert={inserted} onInserted={() => setInserted(null)} />}
      <Components onUse={(policy) => setInserted(policy)} />
    </>
  );
}

function ChainEditor({ target, insert, onInserted }: { target: Target; insert: string | null; onInserted: () => void }) {
  const chain = useLoad((signal) => get<PolicyBinding[]>(target.path, signal), [target.path]);
  const [text, setText] = useState<string | null>(null);
  const [etag, setEtag] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<{ message: string; places: { path: string; detail: string; line: number | null }[] } | null>(null);
  const [notice, setNotice] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const fieldId = useId();
  const problemId = useId();
  const canChange = useCanChange();

  // The text follows the chain in force until someone edits it.
  useEffect(() => {
    if (!chain.data) return;
    setEtag(chain.data.etag);
    setText((t) => (t === null ? chainToYaml(chain.data!.body ?? []) : t));
  }, [chain.data]);

  // A component just uploaded, added to the end of the chain being edited.
  useEffect(() => {
    if (!insert || text === null) return;
    const add = `- policy: "${insert}"\n  config: {}\n`;
    const base = text.trim() === '[]' ? '' : text.endsWith('\n') || text === '' ? text : `${text}\n`;
    setText(base + add);
    onInserted();
    setNotice({ kind: 'ok', text: `Added ${insert} to the end of the chain below: set its config, then Apply.` });
  }, [insert, text, onInserted]);

  const inForce = chain.data?.body ?? null;
  const current = text ?? '';

  const apply = async (e: FormEvent) => {
    e.preventDefault();
    setNotice(null);
    setProblem(null);
    const parsed = yamlToChain(current);
    if (!parsed.ok) {
      setProblem({ message: `The chain is not valid YAML for a chain: ${parsed.message}`, places: [] });
      return;
    }
    setBusy(true);
    try {
      const a = await request<PolicyBinding[]>(target.path, { method: 'PUT', body: parsed.chain, ifMatch: etag });
      setNotice({ kind: 'ok', text: `Applied: the chain of ${target.label} is in force (${parsed.chain.map((b) => b.policy).join(', ') || 'no policies'}).` });
      setText(chainToYaml(a.body ?? parsed.chain));
      if (a.etag) setEtag(a.etag);
      chain.reload();
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && err.problem) {
        const places = (err.problem.errors ?? []).map((p) => ({ ...p, line: lineOf(current, p.path) }));
        setProblem({ message: err.problem.detail, places });
      } else if (err instanceof ApiError && err.stale) {
        setNotice({
          kind: 'error',
          text: `Someone else changed the chain of ${target.label} since it was loaded, so nothing was applied. The chain in force is shown again above; your text is kept: Apply again to replace it.`,
        });
        chain.reload();
      } else {
        setNotice({ kind: 'error', text: describe(err) });
      }
    } finally {
      setBusy(false);
    }
  };

  const reset = () => {
    setProblem(null);
    setNotice(null);
    setText(chainToYaml(inForce ?? []));
  };

  const handBack = async () => {
    setNotice(null);
    setProblem(null);
    setBusy(true);
    try {
      const a = await request<PolicyBinding[]>(target.path, { method: 'DELETE', ifMatch: etag });
      setText(chainToYaml(a.body ?? []));
      setNotice({ kind: 'ok', text: `The chain of ${target.label} is the config file's again.` });
      chain.reload();
    } catch (err) {
      setNotice({ kind: 'error', text: describe(err) });
      if (err instanceof ApiError && err.stale) chain.reload();
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="split">
      <section className="card" aria-labelledby={`${fieldId}-inforce`}>
        <h2 id={`${fieldId}-inforce`}>Chain in force</h2>
        <ErrorNotice error={chain.error} />
        {chain.loading && !chain.data && <Loading what="the chain" />}
        {inForce && inForce.length === 0 && <p>No policies: every message passes straight to the backend.</p>}
        {inForce && inForce.length > 0 && (
          <ol className="chain">
            {inForce.map((b, i) => (
              <Binding key={i} binding={b} />
            ))}
          </ol>
        )}
      </section>
      {canChange && <form className="card" onSubmit={apply} aria-labelledby={`${fieldId}-edit`}>
        <h2 id={`${fieldId}-edit`}>Edit the chain</h2>
        <div className="field">
          <label htmlFor={fieldId}>Chain</label>
          <p className="hint" id={`${fieldId}-hint`}>
            YAML, as the config file writes a server's <code>policies</code>: a list of <code>- policy: NAME</code> with its <code>config</code> (and optionally{' '}
            <code>fail_open</code>, <code>limits</code>, <code>allow_hosts</code>, <code>secrets</code>).
          </p>
          <textarea
            id={fieldId}
            className="code"
            rows={Math.min(24, Math.max(8, current.split('\n').length + 1))}
            value={current}
            spellCheck={false}
            onChange={(e) => setText(e.target.value)}
            aria-invalid={problem ? true : undefined}
            aria-describedby={problem ? `${problemId} ${fieldId}-hint` : `${fieldId}-hint`}
            disabled={text === null}
          />
          {problem && (
            <div id={problemId} className="field-problem" role="alert">
              <p>
                <strong>Not applied.</strong> {problem.places.length > 0 ? `${problem.places.length === 1 ? 'One problem' : `${problem.places.length} problems`}:` : problem.message}
              </p>
              {problem.places.length > 0 && (
                <ul className="places">
                  {problem.places.map((p, i) => (
                    <li key={i}>
                      <code>{p.path}</code>
                      {p.line !== null && <> (line {p.line})</>}: {p.detail}
                    </li>
                  ))}
                </ul>
              )}
            </div>
          )}
        </div>
        {notice && <Notice kind={notice.kind}>{notice.text}</Notice>}
        <div className="toolbar">
          <button type="submit" disabled={busy || text === null}>
            {busy ? 'Applying…' : 'Apply'}
          </button>
          <button type="button" className="secondary" onClick={reset} disabled={busy}>
            Reset to the chain in force
          </button>
          <button type="button" className="secondary" onClick={handBack} disabled={busy}>
            Hand back to the config file
          </button>
        </div>
      </form>}
    </div>
  );
}

function Binding({ binding: b }: { binding: PolicyBinding }) {
  const secrets = Object.keys(b.secrets ?? {});
  const limits = b.limits ?? {};
  return (
    <li className="binding">
      <div className="card-head">
        <h3>
          <code className="break">{b.policy}</code>
        </h3>
        {b.fail_open ? <Badge tone="warn">fails open</Badge> : <Badge tone="neutral">fails closed</Badge>}
        {b.instances && <Badge tone="neutral">{b.instances}</Badge>}
      </div>
      <dl className="facts">
        {(limits.memory_mb !== undefined || limits.timeout_ms !== undefined) && (
          <div>
            <dt>Limits</dt>
            <dd>
              {[limits.memory_mb !== undefined && `${limits.memory_mb} MiB`, limits.timeout_ms !== undefined && `${limits.timeout_ms} ms`].filter(Boolean).join(', ')}
            </dd>
          </div>
        )}
        {b.allow_hosts && b.allow_hosts.length > 0 && (
          <div>
            <dt>Allowed hosts</dt>
            <dd>{b.allow_hosts.join(', ')}</dd>
          </div>
        )}
        {secrets.length > 0 && (
          <div>
            <dt>Secrets</dt>
            <dd>{secrets.join(', ')}</dd>
          </div>
        )}
      </dl>
      <Json value={b.config ?? {}} label={`Config of ${b.policy}`} />
    </li>
  );
}
