// Preloaded (NODE_OPTIONS=--import) into every Node process of tests/test_bot_openclaw.py: name resolution
// answers only for loopback names, so nothing OpenClaw tries on its own (plugin catalogs, registries,
// update checks) leaves this machine, not even as a DNS query. Each refused name is appended to
// $OPENCLAW_TEST_REFUSED_LOG. IP literals pass (what they reach is the proxy settings' and the test's concern).
import dns from "node:dns";
import { appendFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { isIP } from "node:net";

const LOCAL = { test: (host) => isIP(host) !== 0 || /^(localhost|.+\.localhost)$/i.test(host) };

function refusal(host) {
  if (process.env.OPENCLAW_TEST_REFUSED_LOG) {
    try { appendFileSync(process.env.OPENCLAW_TEST_REFUSED_LOG, `${host}\n`); } catch {}
  }
  return Object.assign(new Error(`getaddrinfo ENOTFOUND ${host} (test: loopback only)`),
                       { code: "ENOTFOUND", errno: -3008, syscall: "getaddrinfo", hostname: host });
}

const lookup = dns.lookup;
dns.lookup = function (host, options, callback) {
  if (typeof options === "function") [callback, options] = [options, {}];
  if (LOCAL.test(String(host))) return lookup.call(this, host, options, callback);
  const err = refusal(host);
  process.nextTick(() => callback(err));
  return {};
};
const lookupAsync = dns.promises.lookup;
dns.promises.lookup = (host, options) => (LOCAL.test(String(host)) ? lookupAsync(host, options) : Promise.reject(refusal(host)));
for (const name of ["resolve", "resolve4", "resolve6", "resolveAny", "resolveCname", "resolveSrv", "resolveTxt"]) {
  const cb = dns[name];
  dns[name] = (host, ...args) => {
    const callback = args.at(-1);
    if (LOCAL.test(String(host))) return cb(host, ...args);
    process.nextTick(() => callback(refusal(host)));
  };
  dns.promises[name] = (host) => Promise.reject(refusal(host));
}
syncBuiltinESMExports();
