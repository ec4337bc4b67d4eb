// OpenClaw plugin entry (openclaw.plugin.json names its id and tools): registers the agent tools
// that reach the hosting backend with the deployment's bot credential. A plain definition object,
// as OpenClaw's loader takes it (what definePluginEntry returns), so nothing is imported from the SDK.
import { Backend } from "./lib/client.js";
import { tools } from "./lib/tools.js";

export { Backend, BackendError } from "./lib/client.js";
export { storeBytes, storeFromUrl, tools } from "./lib/tools.js";

export default {
  id: "openclaw-hosting",
  name: "Hosting backend",
  description: "Knowledge base, media library and cost summary of the bot's owner",
  register(api) {
    const backend = new Backend(api.pluginConfig ?? {}, api.logger);
    for (const tool of tools(backend)) api.registerTool(tool);
  },
};
