// Subscriptions: subscribe to a product, then approve, suspend, resume or cancel; regenerate a
// key. Keys are in the API's answer once, so the console shows them once, until dismissed.

import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { get, request, seg } from '../api';
import type { Product, Regenerated, Subscribed, Subscription, SubscriptionState } from '../types';
import { Badge, CopyButton, ErrorNotice, Loading, Notice, PageHeading, useLoad, when } from '../ui';
import { useCanChange } from '../role';

const TONE: Record<SubscriptionState, 'good' | 'warn' | 'bad' | 'neutral'> = {
  active: 'good',
  pending: 'warn',
  suspended: 'bad',
  cancelled: 'neutral',
};

/** A key shown this once, with what it belongs to. */
interface ShownKeys {
  title: string;
  keys: { label: string; value: string }[];
}

export function Subscriptions({ product }: { product: string | null }) {
  const products = useLoad((signal) => get<{ products: Product[] }>('/api/products', signal), []);
  const [filter, setFilter] = useState(product ?? '');
  const subs = useLoad(
    (signal) => get<{ subscriptions: Subscription[] }>(`/api/subscriptions${filter ? `?product=${seg(filter)}` : ''}`, signal),
    [filter],
  );
  const [shown, setShown] = useState<ShownKeys | null>(null);
  const filterId = useId();
  const canChange = useCanChange();
  const names = products.data?.body.products.map((p) => p.name) ?? [];
  const list = [...(subs.data?.body.subscriptions ?? [])].sort((a, b) => b.created_at - a.created_at);

  return (
    <>
      <PageHeading>Subscriptions</PageHeading>
      {canChange && <NewSubscription
        products={names}
        initial={product}
        onCreated={(s) => {
          setShown({
            title: `Subscription ${s.id} of ${s.subscriber} to ${s.product} is ${s.state}. Its keys, shown this once:`,
            keys: [
              { label: 'Primary key', value: s.keys.primary },
              { label: 'Secondary key', value: s.keys.secondary },
            ],
          });
          subs.reload();
        }}
      />}
      {shown && <KeysOnce shown={shown} onDone={() => setShown(null)} />}
      <h2>All subscriptions</h2>
      <div className="toolbar">
        <div className="field inline">
          <label htmlFor={filterId}>Only product</label>
          <select id={filterId} value={filter} onChange={(e) => setFilter(e.target.value)}>
            <option value="">All products</option>
            {names.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </div>
        <button type="button" className="secondary" onClick={subs.reload}>
          Reload
        </button>
      </div>
      <ErrorNotice error={subs.error} />
      {subs.loading && !subs.data && <Loading what="subscriptions" />}
      {subs.data && list.length === 0 && <p>No subscriptions{filter ? ` to ${filter}` : ''} yet.</p>}
      <div className="cards">
        {list.map((s) => (
          <SubscriptionCard key={s.id} sub={s} onChanged={subs.reload} onKey={setShown} />
        ))}
      </div>
    </>
  );
}

function NewSubscription({ products, initial, onCreated }: { products: string[]; initial: string | null; onCreated: (s: Subscribed) => void }) {
  const [product, setProduct] = useState(initial ?? '');
  const [subscriber, setSubscriber] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const productId = useId();
  const subscriberId = useId();
  const chosen = product || products[0] || '';

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!chosen || !subscriber.trim()) {
      setError(new Error('Choose a product and name the subscriber.'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const a = await request<Subscribed>('/api/subscriptions', { method: 'POST', body: { product: chosen, subscriber: subscriber.trim() } });
      setSubscriber('');
      onCreated(a.body);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card inline-form" onSubmit={submit} aria-labelledby="new-subscription">
      <h2 id="new-subscription" className="full">
        New subscription
      </h2>
      <div className="field">
        <label htmlFor={productId}>Product</label>
        <select id={productId} value={chosen} onChange={(e) => setProduct(e.target.value)}>
          {products.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </div>
      <div className="field grow">
        <label htmlFor={subscriberId}>Subscriber</label>
        <input id={subscriberId} value={subscriber} onChange={(e) => setSubscriber(e.target.value)} placeholder="alice@example.com" autoComplete="off" />
      </div>
      <button type="submit" disabled={busy}>
        Subscribe
      </button>
      {error ? (
        <div className="full">
          <ErrorNotice error={error} />
        </div>
      ) : null}
    </form>
  );
}

function KeysOnce({ shown, onDone }: { shown: ShownKeys; onDone: () => void }) {
  const heading = useRef<HTMLHeadingElement>(null);
  const baseId = useId();
  useEffect(() => {
    heading.current?.focus();
  }, [shown]);
  return (
    <section className="card keys" aria-labelledby={`${baseId}-title`}>
      <h2 id={`${baseId}-title`} ref={heading} tabIndex={-1}>
        Shown once
      </h2>
      <Notice kind="ok">
        <p>{shown.title}</p>
      </Notice>
      <p className="muted">Keep it now: the gateway stores only its digest and cannot show it again.</p>
      {shown.keys.map((k, i) => (
        <div className="field key-field" key={k.label}>
          <label htmlFor={`${baseId}-${i}`}>{k.label}</label>
          <div className="with-button">
            <input id={`${baseId}-${i}`} className="key-value" readOnly value={k.value} onFocus={(e) => e.target.select()} spellCheck={false} />
            <CopyButton text={k.value} label={`Copy the ${k.label.toLowerCase()}`} />
          </div>
        </div>
      ))}
      <button type="button" className="secondary" onClick={onDone}>
        I have kept it
      </button>
    </section>
  );
}

function SubscriptionCard({ sub, onChanged, onKey }: { sub: Subscription; onChanged: () => void; onKey: (k: ShownKeys) => void }) {
  const headingId = useId();
  const slotId = useId();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [confirmCancel, setConfirmCancel] = useState(false);
  const [slot, setSlot] = useState<'primary' | 'secondary'>('primary');
  const canChange = useCanChange();

  const act = async (action: string) => {
    setBusy(true);
    setError(null);
    try {
      if (action.startsWith('keys/')) {
        const a = await request<Regenerated>(`/api/subscriptions/${seg(sub.id)}/${action}`, { method: 'POST', ifMatch: sub.etag });
        const which = a.body.key.slot === 'primary' ? 'Primary key' : 'Secondary key';
        onKey({ title: `New ${which.toLowerCase()} of ${sub.subscriber} (${sub.id}); the other key keeps working. Shown this once:`, keys: [{ label: `New ${which.toLowerCase()}`, value: a.body.key.value }] });
      } else {
        await request<Subscription>(`/api/subscriptions/${seg(sub.id)}/${action}`, { method: 'POST', ifMatch: sub.etag });
      }
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
      setConfirmCancel(false);
      onChanged();
    }
  };

  const live = sub.state !== 'cancelled';
  return (
    <section className="card" aria-labelledby={headingId}>
      <div className="card-head">
        <h3 id={headingId}>{sub.subscriber}</h3>
        <Badge tone={TONE[sub.state]} label="State:">
          {sub.state}
        </Badge>
      </div>
      <dl className="facts">
        <div>
          <dt>Product</dt>
          <dd>{sub.product}</dd>
        </div>
        <div>
          <dt>Id</dt>
          <dd>
            <code className="break">{sub.id}</code>
          </dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{when(sub.created_at)}</dd>
        </div>
      </dl>
      <details>
        <summary>History ({sub.history.length})</summary>
        <ol className="history">
          {sub.history.map((c, i) => (
            <li key={i}>
              <strong>{c.state}</strong> {when(c.at)} by {c.by}
            </li>
          ))}
        </ol>
      </details>
      <ErrorNotice error={error} />
      {canChange && <div className="toolbar">
        {sub.state === 'pending' && (
          <button type="button" disabled={busy} onClick={() => act('approve')}>
            Approve
          </button>
        )}
        {sub.state === 'active' && (
          <button type="button" className="secondary" disabled={busy} onClick={() => act('suspend')}>
            Suspend
          </button>
        )}
        {sub.state === 'suspended' && (
          <button type="button" disabled={busy} onClick={() => act('resume')}>
            Resume
          </button>
        )}
        {live && !confirmCancel && (
          <button type="button" className="danger" disabled={busy} onClick={() => setConfirmCancel(true)}>
            Cancel
          </button>
        )}
      </div>}
      {confirmCancel && (
        <div className="confirm" role="group" aria-label="Confirm cancellation">
          <p>Cancelling is for good: its keys stop working and it cannot be resumed.</p>
          <button type="button" className="danger" disabled={busy} onClick={() => act('cancel')}>
            Cancel for good
          </button>
          <button type="button" className="secondary" onClick={() => setConfirmCancel(false)}>
            Keep it
          </button>
        </div>
      )}
      {live && canChange && (
        <div className="toolbar">
          <div className="field inline">
            <label htmlFor={slotId}>Key</label>
            <select id={slotId} value={slot} onChange={(e) => setSlot(e.target.value as 'primary' | 'secondary')}>
              <option value="primary">Primary</option>
              <option value="secondary">Secondary</option>
            </select>
          </div>
          <button type="button" className="secondary" disabled={busy} onClick={() => act(`keys/${slot}`)}>
            Regenerate
          </button>
        </div>
      )}
    </section>
  );
}
