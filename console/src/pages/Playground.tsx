// Playground: call a tool of a server as a real MCP client would, through the gateway's own
// client listener, its policies included, with an optional subscription key or bearer token.

import { useEffect, useId, useMemo, useState, type FormEvent } from 'react';
import { describe, get, request, seg } from '../api';
import { buildArguments, fieldsOf, initialValues, SchemaFields, type Values } from '../schemaForm';
import type { PlaygroundAnswer, ServerSummary, Tool, ToolList } from '../types';
import { Choice, ErrorNotice, Loading, PageHeading, useLoad } from '../ui';
import { useCanChange } from '../role';
import { CallResult } from './CallResult';

interface Target {
  value: string;
  label: string;
  server: string;
  version: string | null;
}

function targets(servers: ServerSummary[]): Target[] {
  const out: Target[] = [];
  for (const s of servers) {
    if (s.versions && s.versions.length > 0) {
      out.push({ value: s.name, label: `${s.name} (as routed: ${s.default_version ?? 'default'})`, server: s.name, version: null });
      for (const v of s.versions) out.push({ value: `${s.name}@${v}`, label: `${s.name}, version ${v}`, server: s.name, version: v });
    } else {
      out.push({ value: s.name, label: s.name, server: s.name, version: null });
    }
  }
  return out;
}

export function Playground() {
  const servers = useLoad((signal) => get<{ servers: ServerSummary[] }>('/api/servers', signal), []);
  const all = useMemo(() => targets(servers.data?.body.servers ?? []), [servers.data]);
  const [chosen, setChosen] = useState('');
  const target = all.find((t) => t.value === chosen) ?? all[0] ?? null;

  return (
    <>
      <PageHeading>Playground</PageHeading>
      <p className="muted">
        Calls a tool as an MCP client would: the gateway connects to its own client listener (initialize, then tools/call), so every policy of the server runs, and
        each step is shown with its verdict.
      </p>
      <ErrorNotice error={servers.error} />
      {servers.loading && !servers.data && <Loading what="servers" />}
      {all.length > 0 && <Choice label="Server" options={all} value={target?.value ?? ''} onChange={setChosen} />}
      {target && <ToolCall key={target.value} target={target} />}
    </>
  );
}

function ToolCall({ target }: { target: Target }) {
  const [refresh, setRefresh] = useState(0);
  const tools = useLoad((signal) => {
    const q = new URLSearchParams();
    if (target.version) q.set('version', target.version);
    if (refresh > 0) q.set('refresh', 'true');
    const qs = q.toString();
    return get<ToolList>(`/api/servers/${seg(target.server)}/tools${qs ? `?${qs}` : ''}`, signal);
  }, [target.server, target.version, refresh]);
  // The tools as one caller is shown them (after its product's subset and the chain), when asked.
  const [shown, setShown] = useState<Tool[] | null>(null);
  const list = shown ?? tools.data?.body.tools ?? [];
  const [toolName, setToolName] = useState('');
  const tool = list.find((t) => t.name === toolName) ?? list[0] ?? null;
  const fields = useMemo(() => fieldsOf(tool?.inputSchema), [tool]);
  const [values, setValues] = useState<Values>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [key, setKey] = useState('');
  const [bearer, setBearer] = useState('');
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<PlaygroundAnswer | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const ids = useId();
  const canChange = useCanChange();

  // A new tool starts from its schema's defaults.
  useEffect(() => {
    setValues(initialValues(fields));
    setErrors({});
  }, [fields]);

  const caller = () => ({ server: target.server, version: target.version, subscription_key: key.trim() || null, bearer_token: bearer.trim() || null });

  /** Lists the tools through the gateway as this caller; a refusal shows as any answer does. */
  const listAsCaller = async () => {
    setBusy(true);
    setFailure(null);
    setAnswer(null);
    try {
      const a = await request<PlaygroundAnswer>('/api/playground/tools', { method: 'POST', body: caller() });
      const listed = (a.body.response as { result?: { tools?: Tool[] } }).result?.tools;
      if (listed) {
        setShown(listed);
      } else {
        setAnswer(a.body);
      }
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };

  const call = async (e: FormEvent) => {
    e.preventDefault();
    if (!tool) return;
    const built = buildArguments(fields, values);
    if (!built.ok) {
      setErrors(built.errors);
      return;
    }
    setErrors({});
    setBusy(true);
    setFailure(null);
    setAnswer(null);
    try {
      const a = await request<PlaygroundAnswer>('/api/playground/call', {
        method: 'POST',
        body: { ...caller(), tool: tool.name, arguments: built.args },
      });
      setAnswer(a.body);
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="split">
      <form className="card" onSubmit={call} noValidate aria-labelledby={`${ids}-h`}>
        <h2 id={`${ids}-h`}>Call a tool</h2>
        {tools.error ? <ErrorNotice error={tools.error} /> : null}
        {tools.loading && !tools.data && <Loading what="tools" />}
        {tools.data && !tools.data.body.reachable && (
          <p className="field-error" role="alert">
            The backend does not answer{tools.data.body.error ? `: ${tools.data.body.error}` : ''}.
          </p>
        )}
        <div className="inline-form">
          <div className="field grow">
            <label htmlFor={`${ids}-tool`}>Tool</label>
            <select id={`${ids}-tool`} value={tool?.name ?? ''} onChange={(e) => setToolName(e.target.value)} disabled={list.length === 0} aria-describedby={`${ids}-tooldesc`}>
              {list.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.title ? `${t.name} (${t.title})` : t.name}
                </option>
              ))}
            </select>
          </div>
          <button
            type="button"
            className="secondary"
            onClick={() => {
              setShown(null);
              setRefresh((n) => n + 1);
            }}
          >
            Refresh tools
          </button>
        </div>
        <p className="hint">
          {shown
            ? `The ${shown.length} tool(s) this caller is shown, through its product and the chain.`
            : "Every tool the backend offers; a caller may be shown fewer (List as this caller)."}
        </p>
        <p className="hint" id={`${ids}-tooldesc`}>
          {tool?.description ?? (tools.data && list.length === 0 ? 'The server lists no tools.' : '')}
        </p>
        {tool && (
          <fieldset>
            <legend>
              Arguments of <code>{tool.name}</code>
              {fields.some((f) => f.required) && <span className="muted"> (* required)</span>}
            </legend>
            <SchemaFields fields={fields} values={values} errors={errors} idPrefix={`${ids}-arg`} onChange={(n, v) => setValues((old) => ({ ...old, [n]: v }))} />
          </fieldset>
        )}
        <fieldset>
          <legend>Caller (optional)</legend>
          <div className="field">
            <label htmlFor={`${ids}-key`}>Subscription key</label>
            <input id={`${ids}-key`} value={key} onChange={(e) => setKey(e.target.value)} autoComplete="off" spellCheck={false} aria-describedby={`${ids}-key-hint`} />
            <p className="hint" id={`${ids}-key-hint`}>
              Sent as the subscription key header, for a server that products include.
            </p>
          </div>
          <div className="field">
            <label htmlFor={`${ids}-bearer`}>Bearer token</label>
            <input id={`${ids}-bearer`} type="password" value={bearer} onChange={(e) => setBearer(e.target.value)} autoComplete="off" spellCheck={false} aria-describedby={`${ids}-bearer-hint`} />
            <p className="hint" id={`${ids}-bearer-hint`}>
              Sent as <code>Authorization: Bearer …</code>, for a server behind the <code>jwt</code> policy.
            </p>
          </div>
          <button type="button" className="secondary" onClick={listAsCaller} disabled={busy || !canChange}>
            List as this caller
          </button>
        </fieldset>
        <div className="toolbar">
          <button type="submit" disabled={busy || !tool || !canChange} aria-describedby={canChange ? undefined : `${ids}-admin-only`}>
            {busy ? 'Calling…' : 'Call'}
          </button>
          {!canChange && (
            <p className="hint" id={`${ids}-admin-only`}>
              Calling a tool needs the admin token.
            </p>
          )}
        </div>
        {Object.keys(errors).length > 0 && (
          <p className="field-error" role="alert">
            Some arguments need fixing: {Object.keys(errors).join(', ')}.
          </p>
        )}
      </form>
      {failure ? (
        <section className="card" aria-label="Result">
          <h2>Result</h2>
          <p className="field-error" role="alert">
            The call could not be made: {describe(failure)}
          </p>
        </section>
      ) : null}
      {answer && <CallResult answer={answer} />}
      {!answer && !failure && (
        <section className="card placeholder" aria-label="Result">
          <h2>Result</h2>
          <p className="muted">{busy ? 'Calling…' : 'The answer, its HTTP status, the time taken and every policy step appear here.'}</p>
        </section>
      )}
    </div>
  );
}
