// The console's frame: signing in with the admin token, the navigation, and the page the hash names.

import { lazy, Suspense, useEffect, useState, type FormEvent, type MouseEvent, type ReactNode } from 'react';
import { ApiError, request, token, whenUnauthorized } from './api';
import { Loading, Notice } from './ui';
import { CanChange } from './role';
import { Servers } from './pages/Servers';
import { Products } from './pages/Products';
import { Subscriptions } from './pages/Subscriptions';
import { Playground } from './pages/Playground';

// The YAML editor's parser is loaded with the Policies page, not before.
const Policies = lazy(() => import('./pages/Policies').then((m) => ({ default: m.Policies })));

const PAGES = [
  { path: 'servers', name: 'Servers' },
  { path: 'products', name: 'Products' },
  { path: 'subscriptions', name: 'Subscriptions' },
  { path: 'policies', name: 'Policies' },
  { path: 'playground', name: 'Playground' },
] as const;

type PagePath = (typeof PAGES)[number]['path'];

export interface Route {
  page: PagePath;
  params: URLSearchParams;
}

function parse(hash: string): Route {
  const [path, query] = hash.replace(/^#\/?/, '').split('?', 2);
  const page = PAGES.find((p) => p.path === path)?.path ?? 'servers';
  return { page, params: new URLSearchParams(query ?? '') };
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(window.location.hash));
  useEffect(() => {
    const changed = () => setRoute(parse(window.location.hash));
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return route;
}

export function App() {
  const [signedIn, setSignedIn] = useState(() => token.get() !== null);
  const [refused, setRefused] = useState(false);
  const route = useRoute();

  useEffect(() => {
    whenUnauthorized(() => {
      token.clear();
      setRefused(true);
      setSignedIn(false);
    });
    return () => whenUnauthorized(null);
  }, []);

  useEffect(() => {
    const name = PAGES.find((p) => p.path === route.page)?.name ?? 'Servers';
    document.title = signedIn ? `${name} · Tollgate console` : 'Sign in · Tollgate console';
  }, [route.page, signedIn]);

  if (!signedIn) {
    return (
      <SignIn
        expired={refused}
        onSignedIn={() => {
          setRefused(false);
          setSignedIn(true);
        }}
      />
    );
  }

  const signOut = () => {
    token.clear();
    setSignedIn(false);
  };

  return (
    <>
      <a className="skip" href="#main" onClick={skipToMain}>
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Tollgate</span>
        <nav aria-label="Main">
          <ul>
            {PAGES.map((p) => (
              <li key={p.path}>
                <a href={`#/${p.path}`} aria-current={route.page === p.path ? 'page' : undefined}>
                  {p.name}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <button type="button" className="secondary small" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Role>
          <Page route={route} />
        </Role>
      </main>
    </>
  );
}

/** Which token the console holds: with the read-only one, a notice says so and the pages
 * leave out their changes. */
function Role({ children }: { children: ReactNode }) {
  const [role, setRole] = useState<string | null>(null);
  useEffect(() => {
    const ctl = new AbortController();
    request<{ role: string }>('/api/whoami', { signal: ctl.signal })
      .then((a) => setRole(a.body.role))
      .catch(() => setRole(null));
    return () => ctl.abort();
  }, []);
  const readOnly = role === 'read-only';
  return (
    <CanChange.Provider value={!readOnly}>
      {readOnly && (
        <Notice kind="info">
          Signed in with the read-only token: everything can be seen, nothing changed, and the playground cannot call tools. Sign in with the admin token to
          change anything.
        </Notice>
      )}
      {children}
    </CanChange.Provider>
  );
}

function skipToMain(e: MouseEvent) {
  e.preventDefault();
  document.getElementById('main')?.focus();
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'servers':
      return <Servers />;
    case 'products':
      return <Products />;
    case 'subscriptions':
      return <Subscriptions product={route.params.get('product')} />;
    case 'policies':
      return (
        <Suspense fallback={<Loading what="the Policies page" />}>
          <Policies />
        </Suspense>
      );
    case 'playground':
      return <Playground />;
  }
}

function SignIn({ onSignedIn, expired }: { onSignedIn: () => void; expired: boolean }) {
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const given = value.trim();
    if (!given) {
      setError('Enter the admin token.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await request('/api/servers', { withToken: given });
      token.set(given);
      onSignedIn();
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        setError('The gateway refused this token. Use the admin token named by management.admin_token_env.');
      } else {
        setError(err instanceof Error ? err.message : String(err));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="signin" id="main">
      <form onSubmit={submit} className="card" aria-labelledby="signin-title">
        <h1 id="signin-title">Tollgate console</h1>
        <p className="muted">The token is kept in this tab only, until it closes or you sign out.</p>
        {expired && <Notice kind="info">The gateway no longer accepts the token: sign in again.</Notice>}
        <div className="field">
          <label htmlFor="admin-token">Admin token</label>
          <input
            id="admin-token"
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={value}
            onChange={(e) => setValue(e.target.value)}
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? 'signin-error' : undefined}
            autoFocus
          />
        </div>
        {error && (
          <p id="signin-error" className="field-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
