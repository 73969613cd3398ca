// Products: the servers each bundles (all their tools or a subset), whether callers need a key
// and an approval, the product's own chain, and how many subscribe.

import { useId } from 'react';
import { ApiError, get, seg } from '../api';
import type { Product, Subscription } from '../types';
import { Badge, ErrorNotice, Loading, PageHeading, useLoad } from '../ui';

export function Products() {
  const products = useLoad((signal) => get<{ products: Product[] }>('/api/products', signal), []);
  // Counts only: a gateway without a data directory keeps no subscriptions (409), and says so.
  const subs = useLoad(
    (signal) =>
      get<{ subscriptions: Subscription[] }>('/api/subscriptions', signal).then(
        (a) => ({ kept: a.body.subscriptions as Subscription[] | null }),
        (e) => {
          if (e instanceof ApiError && e.status === 409) return { kept: null };
          throw e;
        },
      ),
    [],
  );
  const list = products.data?.body.products ?? [];

  return (
    <>
      <PageHeading>Products</PageHeading>
      <p className="muted">A product bundles servers, all their tools or some, with a chain of its own that runs before each server's. Consumers subscribe to it and present a key.</p>
      <ErrorNotice error={products.error} />
      {products.loading && !products.data && <Loading what="products" />}
      {products.data && list.length === 0 && <p>No products are defined: every server is open to callers without a key.</p>}
      <div className="cards">
        {list.map((p) => (
          <ProductCard key={p.name} product={p} subscriptions={subs.data ? (subs.data.kept?.filter((s) => s.product === p.name) ?? null) : undefined}
            failed={Boolean(subs.error)} />
        ))}
      </div>
    </>
  );
}

/** `subscriptions`: null when none are kept (no data directory), undefined until read. */
function ProductCard({ product: p, subscriptions, failed }: { product: Product; subscriptions: Subscription[] | null | undefined; failed: boolean }) {
  const headingId = useId();
  const count = (state: string) => subscriptions?.filter((s) => s.state === state).length ?? 0;
  return (
    <section className="card" aria-labelledby={headingId}>
      <div className="card-head">
        <h2 id={headingId}>{p.name}</h2>
        {p.approval_required && <Badge tone="warn">approval required</Badge>}
        {p.subscription_required ? <Badge tone="neutral">key required</Badge> : <Badge tone="info">open: no key needed</Badge>}
      </div>
      {p.description && <p className="muted">{p.description}</p>}
      <h3 className="small-heading">Servers</h3>
      <ul className="plain" aria-label={`Servers of ${p.name}`}>
        {p.servers.map((s) => (
          <li key={s.server}>
            <strong>{s.server}</strong>:{' '}
            {s.tools && s.tools.length > 0 ? (
              <span>
                only{' '}
                {s.tools.map((t, i) => (
                  <span key={t}>
                    {i > 0 && ', '}
                    <code>{t}</code>
                  </span>
                ))}
              </span>
            ) : (
              <span>all tools</span>
            )}
          </li>
        ))}
      </ul>
      <dl className="facts">
        <div>
          <dt>Policies</dt>
          <dd>{p.policies && p.policies.length > 0 ? p.policies.map((b) => b.policy).join(' → ') : 'none'}</dd>
        </div>
        <div>
          <dt>Subscriptions</dt>
          <dd>
            {subscriptions === undefined
              ? failed
                ? 'could not be read'
                : '…'
              : subscriptions === null
              ? 'not kept (no data directory)'
              : `${subscriptions.length} (${count('active')} active, ${count('pending')} pending, ${count('suspended')} suspended)`}
          </dd>
        </div>
      </dl>
      <div className="toolbar">
        <a className="button-link" href={`#/subscriptions?product=${seg(p.name)}`} aria-label={`Subscriptions to ${p.name}`}>
          Subscriptions to {p.name}
        </a>
      </div>
    </section>
  );
}
