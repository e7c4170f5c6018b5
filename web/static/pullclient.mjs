// ES module entry of the pushpull browser client; see pullclient.js.
import "./pullclient.js";

export const PullClient = globalThis.PullClient;
export default PullClient;
