// Policy components: upload one (`application/wasm`), see those kept and the chains using each.

import { useId, useRef, useState, type FormEvent } from 'react';
import { ApiError, get, request } from '../api';
import type { Component, Uploaded } from '../types';
import { ErrorNotice, Notice, useLoad } from '../ui';
import { useCanChange } from '../role';

export function Components({ onUse }: { onUse: (policy: string) => void }) {
  const list = useLoad(
    (signal) =>
      get<{ components: Component[] }>('/api/components', signal).then(
        (a) => ({ components: a.body.components, unavailable: null as string | null }),
        (e) => {
          // Without a data directory nothing is kept: say so rather than fail.
          if (e instanceof ApiError && e.status === 409) return { components: [] as Component[], unavailable: e.message };
          throw e;
        },
      ),
    [],
  );
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const canChange = useCanChange();
  const [error, setError] = useState<unknown>(null);
  const [uploaded, setUploaded] = useState<(Uploaded & { created: boolean }) | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const inputId = useId();
  const headingId = useId();

  const upload = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setUploaded(null);
    if (!file) {
      setError(new Error('Choose a component file (.wasm) first.'));
      return;
    }
    setBusy(true);
    try {
      const a = await request<Uploaded>('/api/components', { method: 'POST', raw: file, contentType: 'application/wasm' });
      setUploaded({ ...a.body, created: a.status === 201 });
      setFile(null);
      if (input.current) input.current.value = '';
      list.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby={headingId}>
      <h2 id={headingId}>Components</h2>
      <p className="muted">
        A component of your own, built with <code>tollgate policy build</code>, is compiled and checked when uploaded, then kept under its SHA-256: a binding names it as{' '}
        <code>policy: sha256:…</code>.
      </p>
      {canChange && <form className="inline-form" onSubmit={upload}>
        <div className="field grow">
          <label htmlFor={inputId}>Component</label>
          <input
            ref={input}
            id={inputId}
            type="file"
            accept=".wasm,application/wasm"
            onChange={(e) => {
              setFile(e.target.files?.[0] ?? null);
              setUploaded(null);
            }}
          />
        </div>
        <button type="submit" disabled={busy}>
          {busy ? 'Uploading…' : 'Upload'}
        </button>
      </form>}
      <ErrorNotice error={error} />
      {uploaded && (
        <Notice kind="ok">
          <p>
            {uploaded.created ? 'Uploaded' : 'Already kept'}: <code className="break">{uploaded.policy}</code> ({uploaded.size.toLocaleString()} bytes).
          </p>
          <button type="button" className="secondary small" onClick={() => onUse(uploaded.policy)}>
            Add to the chain
          </button>
        </Notice>
      )}
      <h3 className="small-heading">Kept on this gateway</h3>
      <ErrorNotice error={list.error} />
      {list.data?.unavailable && <p className="muted">{list.data.unavailable}</p>}
      {list.data && !list.data.unavailable && list.data.components.length === 0 && <p className="muted">None yet.</p>}
      {list.data && list.data.components.length > 0 && (
        <ul className="plain components">
          {list.data.components.map((c) => (
            <li key={c.sha256}>
              <code className="break">{c.policy}</code> <span className="muted">{c.size.toLocaleString()} bytes</span>
              <div className="muted">{c.used_by.length > 0 ? `Used by ${c.used_by.join(', ')}` : 'Not bound by any chain'}</div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
