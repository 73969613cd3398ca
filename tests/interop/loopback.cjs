// Preloaded into server-everything (node --require) by run.sh so that its HTTP
// listeners bind to 127.0.0.1 instead of every interface. server-everything
// takes its port from PORT but has no setting for the bind address.
"use strict";
const net = require("node:net");
const host = process.env.INTEROP_BIND_HOST || "127.0.0.1";
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  const isPort = typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first));
  if (isPort && typeof args[1] !== "string") {
    args.splice(1, 0, host);
  } else if (first && typeof first === "object" && !Array.isArray(first) && first.port !== undefined && !first.host && !first.path) {
    args[0] = { ...first, host };
  }
  return listen.apply(this, args);
};
