// hcp console: a page per view, built from the console's JSON API. Every
// change sends the session's CSRF token; live views re-read their data when the
// server reports a change (server-sent events).
"use strict";

const state = { user: "", csrf: "", events: null };

// h builds an element: h("td", {class: "x"}, "text", child, ...). Text is
// always set as text, never parsed as HTML.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const main = () => document.getElementById("main");
function show(...children) {
  main().replaceChildren(...children.filter(Boolean));
}

class APIError extends Error {
  constructor(status, body) {
    super(body.message || ("HTTP " + status));
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (method !== "GET") opts.headers["X-CSRF-Token"] = state.csrf;
  const res = await fetch(path, opts);
  let data = {};
  try { data = await res.json(); } catch (e) { data = {}; }
  if (res.status === 401 && path !== "/api/login") {
    state.user = "";
    location.hash = "#/login";
    throw new APIError(401, data);
  }
  if (!res.ok) throw new APIError(res.status, data);
  return data;
}

function age(ts) {
  if (!ts) return "";
  const s = Math.max(0, (Date.now() - Date.parse(ts)) / 1000);
  if (s < 120) return Math.round(s) + "s";
  if (s < 7200) return Math.round(s / 60) + "m";
  if (s < 172800) return Math.round(s / 3600) + "h";
  return Math.round(s / 86400) + "d";
}

function cond(obj, type) {
  return ((obj && obj.status && obj.status.conditions) || []).find(c => c.type === type);
}

function badge(c, okWhen) {
  if (!c) return h("span", { class: "badge wait" }, "Unknown");
  const good = c.status === (okWhen || "True");
  return h("span", { class: "badge " + (good ? "ok" : (c.status === "Unknown" ? "wait" : "bad")) }, c.type + "=" + c.status);
}

function errorBox(id) { return h("div", { class: "error", id, role: "alert" }); }
function setError(id, msg) { const el = document.getElementById(id); if (el) el.textContent = msg || ""; }

// live re-runs render whenever the server reports a change of the objects the
// page shows. Only one stream is open at a time.
function live(namespaces, render) {
  if (state.events) state.events.close();
  const es = new EventSource("/api/events?namespaces=" + encodeURIComponent(namespaces.join(",")));
  state.events = es;
  let pending = false;
  // A refresh redraws the page; while the user types in a scale box it waits
  // until they leave the box, so the edit is not lost.
  let waiting = false;
  const refresh = () => {
    if (state.events !== es || waiting) return;
    const el = document.activeElement;
    if (el && el.matches("input.small")) {
      waiting = true;
      el.addEventListener("blur", () => { waiting = false; refresh(); }, { once: true });
      return;
    }
    render();
  };
  es.addEventListener("change", () => {
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; refresh(); }, 200);
  });
}

function stopLive() {
  if (state.events) { state.events.close(); state.events = null; }
}

// ---- login ----

function loginView() {
  stopLive();
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  const token = h("textarea", { id: "login-token", rows: 3, placeholder: "eyJhbGciOi…", autocomplete: "off" });
  const kubeconfig = h("textarea", { id: "login-kubeconfig", rows: 6, placeholder: "apiVersion: v1\nkind: Config\n…", autocomplete: "off" });
  const file = h("input", { type: "file", id: "login-kubeconfig-file", onchange: async e => {
    const f = e.target.files[0];
    if (f) kubeconfig.value = await f.text();
  } });
  const submit = async () => {
    setError("login-error", "");
    try {
      const body = token.value.trim() ? { token: token.value.trim() } : { kubeconfig: kubeconfig.value };
      const res = await api("POST", "/api/login", body);
      state.user = res.user; state.csrf = res.csrf;
      location.hash = "#/clusters";
    } catch (e) {
      setError("login-error", e.message);
    }
  };
  show(h("div", { class: "card" },
    h("h1", {}, "Log in to the hcp console"),
    h("p", { class: "muted" }, "Use the management cluster's credentials: a bearer token (kubectl create token <serviceaccount>), or a kubeconfig such as the one hcp up writes. What you may see and change is what RBAC allows those credentials."),
    h("label", { for: "login-token" }, "Bearer token"), token,
    h("label", { for: "login-kubeconfig" }, "…or a kubeconfig"), kubeconfig, file,
    errorBox("login-error"),
    h("div", { class: "actions" }, h("button", { type: "button", id: "login-submit", onclick: submit }, "Log in"))));
}

// ---- clusters ----

async function clustersView() {
  const nsInput = h("input", { id: "clusters-namespace", placeholder: "all namespaces", value: sessionStorage.getItem("ns") || "" });
  const table = h("tbody", { id: "clusters" });
  const render = async () => {
    const ns = nsInput.value.trim();
    sessionStorage.setItem("ns", ns);
    setError("clusters-error", "");
    try {
      const list = await api("GET", "/api/list/hostedclusters?namespace=" + encodeURIComponent(ns));
      const rows = (list.items || []).map(hc => {
        const avail = cond(hc, "Available"), prog = cond(hc, "Progressing");
        const version = (hc.status && hc.status.version && hc.status.version.history && hc.status.version.history[0]) ? hc.status.version.history[0].version : "";
        return h("tr", { "data-cluster": hc.metadata.namespace + "/" + hc.metadata.name },
          h("td", {}, h("a", { href: "#/clusters/" + hc.metadata.namespace + "/" + hc.metadata.name }, hc.metadata.name)),
          h("td", {}, hc.metadata.namespace), h("td", {}, version),
          h("td", { class: "available" }, badge(avail)), h("td", {}, badge(prog, "False")),
          h("td", { class: "muted" }, (avail && avail.status !== "True" ? avail.message : "") || (prog && prog.status === "True" ? prog.message : "")),
          h("td", {}, age(hc.metadata.creationTimestamp)));
      });
      table.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No hosted clusters" + (ns ? " in " + ns : "") + ". Create one with Create cluster."))]));
    } catch (e) {
      table.replaceChildren();
      setError("clusters-error", e.message);
    }
  };
  const createMenu = h("div", { class: "menu", hidden: true },
    h("span", { class: "muted" }, "Host inventory › "),
    h("a", { href: "#/create", id: "create-hosted" }, "Hosted control plane"));
  show(h("h1", {}, "Clusters"),
    h("div", { class: "actions" },
      h("button", { type: "button", id: "create-cluster", onclick: () => { createMenu.hidden = !createMenu.hidden; } }, "Create cluster"),
      h("span", {}, " Namespace: "), nsInput,
      h("button", { type: "button", class: "secondary", id: "clusters-show", onclick: () => {
        render();
        live(nsInput.value.trim() ? [nsInput.value.trim()] : [], render);
      } }, "Show")),
    createMenu,
    errorBox("clusters-error"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Namespace", "Version", "Available", "Progressing", "Message", "Age"].map(t => h("th", {}, t)))), table),
    h("p", { class: "live" }, "Updates live."));
  await render();
  live(nsInput.value.trim() ? [nsInput.value.trim()] : [], render);
}

async function clusterView(ns, name) {
  const body = h("div", { id: "cluster" });
  let agentNamespace = "";
  const render = async () => {
    let v;
    try {
      v = await api("GET", "/api/clusters/" + ns + "/" + name);
    } catch (e) {
      body.replaceChildren(errorBox("cluster-error"));
      setError("cluster-error", e.message);
      return;
    }
    const hc = v.hostedCluster;
    const avail = cond(hc, "Available");
    agentNamespace = hc.spec.platform && hc.spec.platform.agent ? hc.spec.platform.agent.agentNamespace : "";
    const conds = (hc.status && hc.status.conditions) || [];
    const comps = (v.controlPlane && v.controlPlane.status && v.controlPlane.status.components) || [];
    const ep = hc.status && hc.status.controlPlaneEndpoint;
    const pools = v.nodePools || [];
    const machines = v.machines || [];
    const agents = v.agents || [];
    const agentOf = m => {
      const id = (m.spec.providerID || "").replace("agent://", "");
      const a = agents.find(x => x.metadata.name === id);
      return a ? (a.spec.hostname || (a.status.inventory && a.status.inventory.hostname) || a.metadata.name) : id;
    };
    body.replaceChildren(...[
      h("h1", {}, name, " ", h("span", { id: "cluster-available" }, badge(avail))),
      h("p", { class: "muted", id: "cluster-message" }, avail ? avail.message : "The operator has not reported on this cluster yet."),
      h("div", { class: "card" },
        h("div", {}, "Namespace: ", ns, " · control plane namespace: ", ns + "-" + name, " · release: ", hc.spec.release.image, " · policy: ", hc.spec.controllerAvailabilityPolicy || ""),
        h("div", {}, "API server: ", h("span", { class: "mono", id: "cluster-endpoint" }, ep && ep.host ? "https://" + ep.host + ":" + ep.port : "not published yet")),
        hc.status && hc.status.ignitionEndpoint ? h("div", {}, "Ignition endpoint: ", h("span", { class: "mono" }, hc.status.ignitionEndpoint)) : null,
        h("div", { class: "actions" },
          hc.status && hc.status.kubeconfig
            ? h("a", { class: "button", id: "download-kubeconfig", href: "/api/clusters/" + ns + "/" + name + "/kubeconfig", download: "kubeconfig-" + name }, "Download kubeconfig")
            : h("span", { class: "muted" }, "The admin kubeconfig can be downloaded once the cluster is Available."))),
      versionCard(ns, name, hc, v.upgrades || []),
      backupsCard(ns, name, hc, v.backups || []),
      h("h2", {}, "Control plane components"),
      h("table", { id: "components" }, h("thead", {}, h("tr", {}, ["Component", "Ready", "Version", "Message"].map(t => h("th", {}, t)))),
        h("tbody", {}, comps.length ? comps.map(c => h("tr", { "data-component": c.name },
          h("td", {}, c.name),
          h("td", {}, h("span", { class: "badge " + (c.readyReplicas >= c.replicas && c.replicas > 0 ? "ok" : "wait") }, c.readyReplicas + "/" + c.replicas)),
          h("td", {}, c.version || ""), h("td", { class: "muted" }, c.message || "")))
          : [h("tr", {}, h("td", { colspan: 4, class: "muted" }, "Waiting for the control plane to be deployed…"))])),
      h("h2", {}, "Conditions"),
      h("table", { id: "conditions" }, h("thead", {}, h("tr", {}, ["Type", "Status", "Reason", "Message", "Since"].map(t => h("th", {}, t)))),
        h("tbody", {}, conds.map(c => h("tr", { "data-condition": c.type }, h("td", {}, c.type), h("td", {}, c.status), h("td", {}, c.reason), h("td", { class: "muted" }, c.message), h("td", {}, age(c.lastTransitionTime)))))),
      h("h2", {}, "Node pools"),
      h("table", { id: "nodepools" }, h("thead", {}, h("tr", {}, ["Name", "Nodes", "Ready", "Status", "Scale"].map(t => h("th", {}, t)))),
        h("tbody", {}, pools.length ? pools.map(np => nodePoolRow(np, "cluster-error")) : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No node pools."))])),
      h("h2", {}, "Nodes"),
      h("table", { id: "nodes" }, h("thead", {}, h("tr", {}, ["Machine", "Node", "Host (Agent)", "Phase", "Node ready"].map(t => h("th", {}, t)))),
        h("tbody", {}, machines.length ? machines.map(m => {
          const ready = cond(m, "NodeReady");
          return h("tr", { "data-machine": m.metadata.name, "data-node": (m.status && m.status.nodeRef && m.status.nodeRef.name) || "" },
            h("td", {}, m.metadata.name), h("td", {}, (m.status && m.status.nodeRef && m.status.nodeRef.name) || "—"),
            h("td", {}, agentOf(m)), h("td", {}, (m.status && m.status.phase) || ""),
            h("td", { class: "node-ready" }, ready ? badge(ready) : h("span", { class: "muted" }, "not joined")));
        }) : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No nodes yet."))])),
      (v.unreadable || []).length ? h("p", { class: "muted" }, "Not shown (no access): " + v.unreadable.join("; ")) : null,
      errorBox("cluster-error"),
      h("p", { class: "live" }, "Updates live as the deployment progresses.")].filter(Boolean));
  };
  show(h("p", {}, h("a", { href: "#/clusters" }, "‹ Clusters")), body);
  await render();
  live([ns, ns + "-" + name, agentNamespace].filter(Boolean), render);
}

// versionCard shows the version the control plane completed, the one it
// rolls out, its history, and the upgrades the rules allow, each with a
// button.
function versionCard(ns, name, hc, upgrades) {
  const vs = (hc.status && hc.status.version) || {};
  const history = vs.history || [];
  const done = history.find(e => e.state === "Completed");
  const rolling = history[0] && history[0].state !== "Completed" ? history[0] : null;
  const progressing = cond(hc, "Progressing");
  return h("div", { class: "card", id: "version" },
    h("div", {}, "Version: ", h("strong", { id: "cluster-version" }, done ? done.version : "none completed yet"),
      rolling ? h("span", { id: "cluster-upgrading" }, " · upgrading to ", rolling.version,
        progressing && progressing.status === "True" ? " (" + progressing.message + ")" : "") : null),
    history.length ? h("div", { class: "muted", id: "version-history" }, "History: ",
      history.map(e => e.version + " " + e.state + (e.completionTime ? " " + age(e.completionTime) + " ago" : "")).join(" ← ")) : null,
    h("div", { class: "actions", id: "upgrades" },
      upgrades.length ? upgrades.map(u => h("button", { type: "button", "data-release": u.image, id: "upgrade-" + u.name.replace(/\./g, "-"), onclick: async () => {
        setError("cluster-error", "");
        try {
          await api("POST", "/api/clusters/" + ns + "/" + name + "/upgrade", { releaseImage: u.image });
        } catch (e) {
          setError("cluster-error", e.message);
        }
      } }, "Upgrade to " + u.name)) : h("span", { class: "muted" }, rolling ? "" : "No upgrade available: this management cluster serves no later release the rules allow."),
      upgrades.length ? h("span", { class: "muted" }, " etcd first, then the API servers, then the controllers, one replica at a time.") : null));
}

// backupsCard lists the cluster's backups, newest first, the scheduled
// backups' state, and takes one to the management plane's data directory.
function backupsCard(ns, name, hc, backups) {
  const scheduled = cond(hc, "EtcdBackupSucceeded");
  return h("div", { class: "card", id: "backups" },
    h("div", {}, h("strong", {}, "Backups"),
      scheduled ? h("span", { class: "muted", id: "scheduled-backups" }, " · scheduled: ", badge(scheduled), " ", scheduled.message) : null),
    h("table", { id: "backup-list" }, h("thead", {}, h("tr", {}, ["Name", "Completed", "Size", "Where", "Age"].map(t => h("th", {}, t)))),
      h("tbody", {}, backups.length ? backups.map(b => {
        const done = cond(b, "BackupCompleted");
        return h("tr", { "data-backup": b.metadata.name },
          h("td", {}, b.metadata.name),
          h("td", { class: "backup-completed" }, done ? badge(done) : h("span", { class: "badge wait" }, "Pending")),
          h("td", {}, b.status && b.status.size ? Math.round(b.status.size / 1024) + " KiB" : ""),
          h("td", { class: "mono" }, (b.status && b.status.url) || (done && done.status === "False" ? done.message : "")),
          h("td", {}, age(b.metadata.creationTimestamp)));
      }) : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No backups yet."))])),
    h("div", { class: "actions" },
      h("button", { type: "button", id: "take-backup", onclick: async () => {
        setError("cluster-error", "");
        try {
          await api("POST", "/api/clusters/" + ns + "/" + name + "/backups", {});
        } catch (e) {
          setError("cluster-error", e.message);
        }
      } }, "Back up now"),
      h("span", { class: "muted" }, " an etcd snapshot with the cluster's CA and keys, to the management plane's data directory (hcp create etcd-backup --to for S3).")));
}

// nodePoolRow is a node pool with its scale control; errors go to errorID.
function nodePoolRow(np, errorID) {
  const ready = cond(np, "Ready");
  const input = h("input", { class: "small", type: "number", min: 0, max: 500, id: "scale-" + np.metadata.name, value: np.spec.replicas });
  return h("tr", { "data-nodepool": np.metadata.name },
    h("td", {}, np.metadata.name), h("td", {}, String(np.spec.replicas)),
    h("td", { class: "np-ready" }, String((np.status && np.status.replicas) || 0) + "/" + np.spec.replicas),
    h("td", {}, badge(ready), " ", h("span", { class: "muted" }, ready ? ready.message : "")),
    h("td", {}, input, " ", h("button", { type: "button", class: "secondary", id: "scale-" + np.metadata.name + "-apply", onclick: async () => {
      setError(errorID, "");
      try {
        await api("POST", "/api/nodepools/" + np.metadata.namespace + "/" + np.metadata.name + "/scale", { replicas: Number(input.value) });
      } catch (e) { setError(errorID, e.message); }
    } }, "Scale")));
}

// ---- create wizard ----

const steps = ["Cluster details", "Node pools", "Networking", "Automation", "Review"];
const stepOf = {
  "credential": 0, "name": 0, "namespace": 0, "release-image": 0, "pull-secret": 0, "ssh-key": 0, "base-domain": 0, "control-plane-availability-policy": 0,
  "agent-namespace": 1, "agentLabelSelector": 1, "node-pool-replicas": 1,
  "api-server-publishing": 2, "api-server-address": 2,
  "labels": 3, "annotations": 3,
};
// The form's fields, by the CLI flag each stands for.
const formKeys = {
  "name": "name", "namespace": "namespace", "release-image": "releaseImage", "credential": "credential", "pull-secret": "pullSecret",
  "ssh-key": "sshKey", "base-domain": "baseDomain", "control-plane-availability-policy": "controlPlaneAvailabilityPolicy",
  "agent-namespace": "agentNamespace", "agentLabelSelector": "agentLabelSelector", "node-pool-replicas": "nodePoolReplicas",
  "api-server-publishing": "apiServerPublishing", "api-server-address": "apiServerAddress", "labels": "labels", "annotations": "annotations",
};

async function createView() {
  stopLive();
  let wiz = { releases: [], credentials: [], apiServerAddress: "" };
  try { wiz = await api("GET", "/api/wizard"); } catch (e) { /* shown as empty choices */ }
  const f = id => document.getElementById("f-" + id);
  const field = (flag, label, input, help) => h("div", { class: "field", "data-field": flag },
    h("label", { for: "f-" + flag }, label), input, help ? h("div", { class: "help" }, help) : null,
    h("div", { class: "field-error", id: "err-" + flag, role: "alert" }));
  const credential = h("select", { id: "f-credential", onchange: () => {
    const c = wiz.credentials.find(x => x.namespace + "/" + x.name === credential.value);
    if (c) {
      if (c.baseDomain) f("base-domain").value = c.baseDomain;
      if (c.sshKey) f("ssh-key").value = c.sshKey;
    }
    f("pull-secret").placeholder = c && c.hasPullSecret ? "Filled from credential " + credential.value + " (leave empty to use it)" : '{"auths": {…}}';
  } }, h("option", { value: "" }, "— none —"), wiz.credentials.map(c => h("option", { value: c.namespace + "/" + c.name }, c.namespace + "/" + c.name)));
  const pages = [
    h("section", {},
      field("credential", "Host inventory credential", credential, wiz.credentials.length ? "Fills the pull secret, base domain and ssh key from a saved credential." : "No host inventory credentials you may read; enter the values below."),
      h("div", { class: "grid" },
        field("name", "Cluster name", h("input", { id: "f-name", autocomplete: "off", placeholder: "example" }), "Lowercase letters, digits and '-', starting with a letter; at most 53; not \"clusters\"."),
        field("namespace", "Namespace", h("input", { id: "f-namespace", value: "clusters" }), "Where the HostedCluster is created.")),
      field("release-image", "Release", h("select", { id: "f-release-image" }, wiz.releases.map(r => h("option", { value: r.image }, r.name + " (" + r.image + ")")))),
      field("pull-secret", "Pull secret", h("textarea", { id: "f-pull-secret", rows: 3, placeholder: '{"auths": {…}}' }), "The registry pull secret (JSON with an \"auths\" object). It is sent once and never shown again."),
      h("div", { class: "grid" },
        field("base-domain", "Base domain", h("input", { id: "f-base-domain", placeholder: "krnl.es" })),
        field("control-plane-availability-policy", "Control plane availability", h("select", { id: "f-control-plane-availability-policy" },
          h("option", { value: "HighlyAvailable" }, "HighlyAvailable (3 replicas across zones)"), h("option", { value: "SingleReplica" }, "SingleReplica")))),
      field("ssh-key", "SSH public key", h("textarea", { id: "f-ssh-key", rows: 2, placeholder: "ssh-ed25519 AAAA… user@host" }), "Installed for user core on the nodes.")),
    h("section", {},
      field("agent-namespace", "Namespace of the hosts", h("input", { id: "f-agent-namespace", placeholder: "clusters-example" }), "The namespace holding the Agents (hosts of the InfraEnv) the node pool uses."),
      field("agentLabelSelector", "Agent label selector", h("input", { id: "f-agentLabelSelector", placeholder: "e.g. inventory.agent-install.openshift.io/cpu-cores=4 (optional)" })),
      field("node-pool-replicas", "Number of hosts", h("input", { id: "f-node-pool-replicas", type: "number", min: 0, value: 2 })),
      h("p", { class: "notice", id: "np-matching" }, "Enter the namespace of the hosts to see how many match.")),
    h("section", {},
      field("api-server-publishing", "API server publishing strategy", h("select", { id: "f-api-server-publishing", onchange: () => dnsNote() },
        h("option", { value: "NodePort" }, "NodePort (a node's address)"), h("option", { value: "LoadBalancer" }, "LoadBalancer (an existing load balancer)"))),
      field("api-server-address", "API server address", h("input", { id: "f-api-server-address", value: wiz.apiServerAddress, oninput: () => dnsNote() }), "The address nodes and clients use to reach the API server (NodePort: a management node)."),
      h("p", { class: "notice", id: "dns-record" })),
    h("section", {},
      field("labels", "Labels", h("textarea", { id: "f-labels", rows: 3, placeholder: "team=payments" }), "One key=value per line, set on the HostedCluster."),
      field("annotations", "Annotations", h("textarea", { id: "f-annotations", rows: 3, placeholder: "owner=alice" }), "One key=value per line.")),
    h("section", {}, h("table", { id: "review" })),
  ];
  let current = 0;
  const form = () => {
    const out = {};
    for (const [flag, key] of Object.entries(formKeys)) { const el = f(flag); out[key] = el ? String(el.value) : ""; }
    return out;
  };
  const dnsNote = () => {
    const name = f("name").value.trim() || "<name>", domain = f("base-domain").value.trim() || "<base-domain>";
    const lb = f("api-server-publishing").value === "LoadBalancer";
    document.getElementById("dns-record").textContent = "Create a DNS record api." + name + "." + domain + " that points to " +
      (lb ? "the load balancer's address" : (f("api-server-address").value.trim() || "a management node's address") + " (the NodePort's node)") + ".";
  };
  const matching = async () => {
    const ns = f("agent-namespace").value.trim();
    const el = document.getElementById("np-matching");
    if (!ns) { el.textContent = "Enter the namespace of the hosts to see how many match."; return; }
    try {
      const m = await api("GET", "/api/agents/matching?namespace=" + encodeURIComponent(ns) + "&selector=" + encodeURIComponent(f("agentLabelSelector").value.trim()));
      el.textContent = m.matching + " hosts in " + ns + " match; " + m.free + " are free to use now.";
    } catch (e) { el.textContent = e.message; }
  };
  const clearErrors = () => {
    document.querySelectorAll(".field-error").forEach(e => { e.textContent = ""; });
    document.querySelectorAll(".invalid").forEach(e => e.classList.remove("invalid"));
    setError("wizard-error", "");
  };
  // showProblems puts each problem next to its field and says whether any
  // belongs to a step up to upTo.
  const showProblems = (problems, upTo) => {
    let first = -1;
    for (const p of problems) {
      const step = stepOf[p.field];
      if (step === undefined) { setError("wizard-error", (p.field ? "--" + p.field + ": " : "") + p.message); first = first < 0 ? current : first; continue; }
      if (step > upTo) continue;
      setError("err-" + p.field, p.message);
      if (f(p.field)) f(p.field).classList.add("invalid");
      if (first < 0 || step < first) first = step;
    }
    return first;
  };
  const validate = async (upTo) => {
    clearErrors();
    try {
      await api("POST", "/api/clusters?dryRun=true", form());
      return -1;
    } catch (e) {
      if (e.status === 422) return showProblems(e.body.fields || [{ field: e.body.field, message: e.message }], upTo);
      if (e.status === 401) return current;
      // Checks against the cluster (names taken, RBAC) are reported at Create.
      return upTo < steps.length - 1 ? -1 : (setError("wizard-error", e.message), current);
    }
  };
  const review = () => {
    const v = form();
    const rows = [["Name", v.name], ["Namespace", v.namespace || "clusters"], ["Release", v.releaseImage],
      ["Pull secret", v.pullSecret ? "entered (hidden)" : (v.credential ? "from credential " + v.credential : "missing")],
      ["Base domain", v.baseDomain], ["Availability", v.controlPlaneAvailabilityPolicy], ["SSH key", v.sshKey ? "set" : "none"],
      ["Hosts namespace", v.agentNamespace], ["Agent selector", v.agentLabelSelector || "any"], ["Nodes", v.nodePoolReplicas],
      ["API server", v.apiServerPublishing + (v.apiServerAddress ? " at " + v.apiServerAddress : "")],
      ["Labels", v.labels.replace(/\n/g, ", ")], ["Annotations", v.annotations.replace(/\n/g, ", ")]];
    document.getElementById("review").replaceChildren(...rows.map(([k, val]) => h("tr", {}, h("th", {}, k), h("td", {}, val))));
  };
  const stepList = h("ol", { class: "steps", id: "wizard-steps" });
  const back = h("button", { type: "button", class: "secondary", id: "wizard-back", onclick: () => go(current - 1) }, "Back");
  const next = h("button", { type: "button", id: "wizard-next", onclick: async () => {
    next.disabled = true;
    const bad = await validate(current);
    next.disabled = false;
    if (bad >= 0) { go(bad, true); return; }
    go(current + 1);
  } }, "Next");
  const create = h("button", { type: "button", id: "wizard-create", onclick: async () => {
    create.disabled = true;
    clearErrors();
    try {
      const res = await api("POST", "/api/clusters", form());
      location.hash = "#/clusters/" + res.namespace + "/" + res.name;
    } catch (e) {
      if (e.status === 422) {
        const step = showProblems(e.body.fields || [{ field: e.body.field, message: e.message }], steps.length);
        if (step >= 0 && step !== current) go(step, true);
      } else setError("wizard-error", e.message);
    } finally { create.disabled = false; }
  } }, "Create");
  const go = (i, keepErrors) => {
    if (!keepErrors) clearErrors();
    current = Math.max(0, Math.min(steps.length - 1, i));
    pages.forEach((p, j) => { p.hidden = j !== current; });
    stepList.replaceChildren(...steps.map((s, j) => h("li", { class: j === current ? "current" : (j < current ? "done" : "") }, (j + 1) + ". " + s)));
    back.disabled = current === 0;
    next.hidden = current === steps.length - 1;
    create.hidden = current !== steps.length - 1;
    if (current === 1) matching();
    if (current === 2) dnsNote();
    if (current === 4) review();
  };
  show(h("p", {}, h("a", { href: "#/clusters" }, "‹ Clusters")),
    h("h1", {}, "Create cluster › Host inventory › Hosted control plane"), stepList,
    h("div", { class: "card" }, ...pages, errorBox("wizard-error"),
      h("div", { class: "actions" }, back, next, create)));
  f("agent-namespace").addEventListener("change", matching);
  f("agentLabelSelector").addEventListener("change", matching);
  go(0);
}

// ---- host inventory ----

async function inventoryView() {
  const envs = h("tbody", { id: "infraenvs" });
  const agents = h("tbody", { id: "agents" });
  const pools = h("tbody", { id: "inventory-nodepools" });
  const render = async () => {
    setError("inventory-error", "");
    try {
      // Each list on its own: RBAC may allow some and not others.
      const get = path => api("GET", path).catch(e => { setError("inventory-error", e.message); return { items: [] }; });
      const [ie, ag, np] = await Promise.all([get("/api/list/infraenvs"), get("/api/list/agents"), get("/api/list/nodepools")]);
      pools.replaceChildren(...(np.items || []).map(p => nodePoolRow(p, "inventory-error")));
      envs.replaceChildren(...(ie.items || []).map(e => {
        const b = (e.status && e.status.bootArtifacts) || {};
        return h("tr", { "data-infraenv": e.metadata.namespace + "/" + e.metadata.name },
          h("td", {}, e.metadata.namespace + "/" + e.metadata.name),
          h("td", {}, b.scriptURL ? h("div", {}, h("span", { class: "muted" }, "any Linux host: "), h("span", { class: "mono" }, "curl -fsSk '" + b.scriptURL + "' | sh")) : "preparing…",
            b.discoveryIgnitionURL ? h("div", {}, h("a", { href: b.discoveryIgnitionURL }, "Discovery Ignition config")) : null),
          h("td", {}, e.spec.agentApproval && e.spec.agentApproval.autoApprove ? "automatic" : "manual"),
          h("td", {}, age(e.metadata.creationTimestamp)));
      }));
      agents.replaceChildren(...(ag.items || []).map(agentRow));
    } catch (e) { setError("inventory-error", e.message); }
  };
  const agentRow = a => {
    const inv = (a.status && a.status.inventory) || {};
    const failed = Object.values((a.status && a.status.validationsInfo) || {}).flat().filter(v => v.status === "failure");
    const mem = inv.memory && inv.memory.physicalBytes ? (inv.memory.physicalBytes / 2 ** 30).toFixed(1) + " GiB" : "";
    const disks = (inv.disks || []).map(d => d.name + (d.sizeBytes ? " " + (d.sizeBytes / 2 ** 30).toFixed(0) + " GiB" : "")).join(", ");
    const nics = (inv.interfaces || []).map(i => [i.name, ...(i.ipV4Addresses || [])].join(" ")).join(", ");
    const bound = a.spec.clusterDeploymentName ? a.spec.clusterDeploymentName.namespace + "/" + a.spec.clusterDeploymentName.name : "";
    return h("tr", { "data-agent": a.metadata.name },
      h("td", {}, h("div", {}, a.spec.hostname || inv.hostname || a.metadata.name), h("div", { class: "muted mono" }, a.metadata.namespace + "/" + a.metadata.name)),
      h("td", { class: "agent-state" }, (a.status && a.status.debugInfo && a.status.debugInfo.state) || "", h("div", { class: "muted" }, (a.status && a.status.debugInfo && a.status.debugInfo.stateInfo) || "")),
      h("td", {}, ((inv.cpu && inv.cpu.count) || "") + " CPU, " + mem),
      h("td", {}, disks), h("td", {}, nics),
      h("td", {}, failed.length ? failed.map(v => h("div", { class: "error" }, v.id + ": " + v.message)) : h("span", { class: "badge ok" }, "all passed")),
      h("td", {}, bound || h("span", { class: "muted" }, "free")),
      h("td", { class: "agent-approved" }, a.spec.approved ? h("span", { class: "badge ok" }, "approved") : h("span", { class: "badge wait" }, "not approved"), " ",
        h("button", { type: "button", class: a.spec.approved ? "secondary approve" : "approve", onclick: async () => {
          try { await api("POST", "/api/agents/" + a.metadata.namespace + "/" + a.metadata.name + "/approval", { approved: !a.spec.approved }); render(); } catch (e) { setError("inventory-error", e.message); }
        } }, a.spec.approved ? "Unapprove" : "Approve")));
  };
  show(h("h1", {}, "Host inventory"), errorBox("inventory-error"),
    h("h2", {}, "Infrastructure environments"),
    h("table", {}, h("thead", {}, h("tr", {}, ["InfraEnv", "Discovery", "Approval", "Age"].map(t => h("th", {}, t)))), envs),
    h("h2", {}, "Hosts"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Host", "State", "CPU / memory", "Disks", "Interfaces", "Validations", "Cluster", "Approval"].map(t => h("th", {}, t)))), agents),
    h("h2", {}, "Node pools"),
    h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Nodes", "Ready", "Status", "Scale"].map(t => h("th", {}, t)))), pools),
    h("p", { class: "live" }, "Updates live."));
  await render();
  live([], render);
}

// ---- routing ----

async function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (!state.user && parts[0] !== "login") {
    try {
      const s = await api("GET", "/api/session");
      state.user = s.user; state.csrf = s.csrf;
    } catch (e) { location.hash = "#/login"; return; }
  }
  if (parts[0] !== "login") {
    document.getElementById("nav").hidden = false;
    document.getElementById("who").hidden = false;
    document.getElementById("user").textContent = state.user;
    document.querySelectorAll("nav a").forEach(a => a.classList.toggle("active", location.hash.startsWith(a.getAttribute("href"))));
  }
  stopLive();
  switch (parts[0]) {
    case "login": return loginView();
    case "create": return createView();
    case "inventory": return inventoryView();
    case "clusters":
      if (parts.length === 3) return clusterView(parts[1], parts[2]);
      return clustersView();
    default:
      location.hash = "#/clusters";
  }
}

document.getElementById("logout").addEventListener("click", async () => {
  try { await api("POST", "/api/logout", {}); } catch (e) { /* gone already */ }
  state.user = ""; state.csrf = "";
  location.hash = "#/login";
});
window.addEventListener("hashchange", route);
route();
