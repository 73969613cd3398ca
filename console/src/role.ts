// Whether the token the console holds may change anything: the read-only token may not, so
// the pages leave out what it would only be refused.

import { createContext, useContext } from 'react';

export const CanChange = createContext(true);

/** False when the console is signed in with the read-only token. */
export function useCanChange(): boolean {
  return useContext(CanChange);
}
