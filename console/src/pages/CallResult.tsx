// The answer of a playground call: HTTP status, time, the result (text, structured content) or
// the JSON-RPC error with its code, and each step with the verdict of every policy it passed.

import { useEffect, useRef } from 'react';
import type { CallStep, ContentItem, PlaygroundAnswer } from '../types';
import { Badge, Json } from '../ui';

const VERDICT_TONE: Record<string, 'good' | 'bad' | 'warn' | 'info' | 'neutral'> = {
  continue: 'good',
  pass: 'good',
  deny: 'bad',
  respond: 'info',
  failed: 'bad',
  hidden: 'bad',
  replace: 'warn',
  drop: 'warn',
};

function summary(a: PlaygroundAnswer): string {
  const r = a.response;
  if (r?.error) return `Refused: HTTP ${a.status}, JSON-RPC error ${r.error.code}`;
  if (r?.result?.isError) return `The tool reported an error: HTTP ${a.status}`;
  if (r?.result) return `Done: HTTP ${a.status}`;
  return `HTTP ${a.status}`;
}

export function CallResult({ answer: a }: { answer: PlaygroundAnswer }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    heading.current?.focus();
  }, [a]);
  const r = a.response;
  const ok = a.status >= 200 && a.status < 300 && !r?.error;
  return (
    <section className="card result" aria-labelledby="call-result">
      <div className="card-head">
        <h2 id="call-result" ref={heading} tabIndex={-1}>
          Result
        </h2>
        <Badge tone={ok ? 'good' : 'bad'}>HTTP {a.status}</Badge>
      </div>
      <p role="status" className="sr-only">
        {summary(a)} in {formatMs(a.duration_ms)}
      </p>
      <dl className="facts">
        <div>
          <dt>HTTP status</dt>
          <dd>{a.status}</dd>
        </div>
        <div>
          <dt>Time taken</dt>
          <dd>{formatMs(a.duration_ms)}</dd>
        </div>
      </dl>
      {r?.error && (
        <div className="rpc-error">
          <h3 className="small-heading">JSON-RPC error</h3>
          <p>
            <strong>Code {r.error.code}</strong>: {r.error.message}
          </p>
          {r.error.data !== undefined && <Json value={r.error.data} label="Error data" />}
        </div>
      )}
      {r?.result && (
        <div className="rpc-result">
          <h3 className="small-heading">{r.result.isError ? 'The tool reported an error' : 'Content'}</h3>
          {(r.result.content ?? []).map((c, i) => (
            <ContentView key={i} item={c} />
          ))}
          {(r.result.content ?? []).length === 0 && <p className="muted">No content.</p>}
          {r.result.structuredContent !== undefined && (
            <>
              <h3 className="small-heading">Structured content</h3>
              <Json value={r.result.structuredContent} label="Structured content" />
            </>
          )}
        </div>
      )}
      {!r && <p className="muted">No JSON-RPC answer.</p>}
      <h3 className="small-heading">Steps</h3>
      {a.steps.length === 0 ? (
        <p className="muted">The gateway refused the call before any policy ran.</p>
      ) : (
        <ol className="steps" aria-label="Steps">
          {a.steps.map((s, i) => (
            <Step key={i} step={s} />
          ))}
        </ol>
      )}
      <details>
        <summary>Raw JSON-RPC answer</summary>
        <Json value={r} />
      </details>
    </section>
  );
}

function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

function formatUs(us: number): string {
  return us < 1000 ? `${us} µs` : formatMs(us / 1000);
}

function ContentView({ item }: { item: ContentItem }) {
  if (item.type === 'text' && typeof item.text === 'string') {
    return <pre className="text-content">{item.text}</pre>;
  }
  if (item.type === 'image' && item.data && item.mimeType?.startsWith('image/')) {
    return <img className="image-content" src={`data:${item.mimeType};base64,${item.data}`} alt="An image the tool returned" />;
  }
  return <Json value={item} label={`${item.type} content`} />;
}

function Step({ step: s }: { step: CallStep }) {
  const ok = s.status >= 200 && s.status < 300;
  return (
    <li className="step">
      <div className="card-head">
        <h4>
          <code>{s.method}</code>
        </h4>
        <Badge tone={ok ? 'good' : 'bad'}>HTTP {s.status}</Badge>
        <Badge tone={s.outcome === 'ok' ? 'good' : 'bad'}>{s.outcome}</Badge>
        {typeof s.code === 'number' && <span className="muted">code {s.code}</span>}
      </div>
      {s.policies.length === 0 ? (
        <p className="muted">No policy ran.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="sr-only">Policies run for {s.method}</caption>
            <thead>
              <tr>
                <th scope="col">Policy</th>
                <th scope="col">Phase</th>
                <th scope="col">Verdict</th>
                <th scope="col">Time</th>
              </tr>
            </thead>
            <tbody>
              {s.policies.map((p, i) => (
                <tr key={i}>
                  <td>
                    <code className="break">{p.name}</code>
                  </td>
                  <td>{p.phase}</td>
                  <td>
                    <Badge tone={VERDICT_TONE[p.verdict] ?? 'neutral'}>{p.verdict}</Badge>
                  </td>
                  <td>{typeof p.us === 'number' ? formatUs(p.us) : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </li>
  );
}
