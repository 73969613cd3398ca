// A no-op policy in JavaScript: asks for the request hook and goes on (the kits bench).

import { definePolicy, hooks } from './tollgate.js';

export const policy = definePolicy({
  init() {
    return hooks('request');
  },
});
