// qnetctl ui: a live web page of a network started by `qnetctl up`, served
// on the loopback interface: the topology with each link's pair rate and
// fidelity, memory and key pools per node, red where a node is down, a link
// is disconnected, has an eavesdropper or a QBER above 11%; updated once a
// second over server-sent events; entangle and QKD requests can be started,
// and an eavesdropper set, from the page.
// The page and its script are in this binary (no CDN, works offline).
//
// Who may use it: whoever has the URL. It carries a random token (printed
// once, like Jupyter's), every request must present it (the page sends it as
// X-Qnet-Token, which a cross-site form cannot), and the server listens on
// the loopback interface only. Behind it qnetctl acts with the operator's
// certificate, as every other qnetctl command does.
#include <openssl/rand.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/entangle_client.h"
#include "cli/network_view.h"
#include "cli/qnetctl_command.h"
#include "security/https_server.h"

// After every header that includes Eigen: httplib pulls in <resolv.h>, whose
// _res macro breaks Eigen's parameter names.
#include <httplib.h>

namespace qnet::qnetctl {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Requests started from the page and still running, at most.
constexpr int kMaxPageRequests = 4;

constexpr char kPage[] = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>qnet</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 0; color: #1d2733; background: #f6f8fa; }
header { padding: 10px 18px; background: #1d2733; color: #fff; display: flex; gap: 18px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; }
#updated { color: #9fb3c8; font-size: 12px; }
main { display: flex; gap: 16px; padding: 16px; }
#topology { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; width: 760px; height: 520px; }
#side { flex: 1; min-width: 300px; }
.panel { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 12px; margin-bottom: 12px; }
h2 { font-size: 14px; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; } td, th { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eaeef2; }
.link line { stroke: #2da44e; stroke-width: 4; } .link.down line { stroke: #cf222e; stroke-dasharray: 6 4; }
.link.eve line { stroke: #cf222e; }
.node circle { fill: #2da44e; stroke: #1d2733; stroke-width: 2; } .node.down circle { fill: #cf222e; }
.node text, .link text { font-size: 12px; fill: #1d2733; } .node text.name { font-weight: 600; font-size: 13px; }
.result { margin-top: 6px; font-size: 12px; color: #57606a; } .error { color: #cf222e; }
</style></head>
<body>
<header><h1>qnet <span id="network"></span></h1><span id="updated">connecting...</span></header>
<main>
<svg id="topology" viewBox="0 0 760 520" role="img" aria-label="network topology"></svg>
<section id="side">
 <form id="entangle" class="panel"><h2>Entangle (MEASURE pairs, BB84 bases)</h2>
  from <select id="from" class="nodes"></select> to <select id="to" class="nodes last"></select>
  pairs <input id="pairs" type="number" value="500" min="1" max="100000" style="width:80px">
  <button id="start" type="submit">Start</button><div id="result" class="result"></div></form>
 <form id="qkd" class="panel"><h2>QKD (BBM92 key)</h2>
  from <select id="qkd-from" class="nodes"></select> to <select id="qkd-to" class="nodes second"></select>
  bits <input id="qkd-bits" type="number" value="256" min="1" max="100000" style="width:70px">
  pairs/block <input id="qkd-block" type="number" value="20000" min="1000" max="1000000" style="width:80px">
  <button id="qkd-start" type="submit">Start</button><div id="qkd-result" class="result"></div></form>
 <form id="eavesdrop" class="panel"><h2>Eavesdropper (intercept-resend)</h2>
  on <select id="eve-link"></select>
  fraction <input id="eve-fraction" type="number" value="1" min="0" max="1" step="0.05" style="width:70px">
  <button id="eve-set" type="submit">Set</button><div id="eve-result" class="result"></div></form>
 <div class="panel"><h2>Nodes</h2><table id="nodes"><thead><tr><th>node</th><th>memory in use</th>
  <th>QKD QBER</th><th>key pools (bits)</th></tr></thead><tbody></tbody></table></div>
 <div class="panel"><h2>Requests from this page</h2><table id="jobs"><tbody></tbody></table></div>
</section></main>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token") || "";
const svg = document.getElementById("topology");
const NS = "http://www.w3.org/2000/svg";
let known = "";
function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function fmt(x, digits) { return x === undefined ? "-" : Number(x).toFixed(digits); }
function positions(nodes) {
  // On a circle in file order (a chain of two or three reads left to right).
  const p = {}, n = nodes.length, cx = 380, cy = 260, r = 190;
  nodes.forEach((node, i) => {
    if (n <= 3) { p[node.name] = [90 + (n === 1 ? 290 : i * 580 / (n - 1)), cy]; return; }
    const a = -Math.PI / 2 + 2 * Math.PI * i / n;
    p[node.name] = [cx + r * Math.cos(a), cy + r * Math.sin(a)];
  });
  return p;
}
function render(state) {
  document.getElementById("network").textContent = state.network;
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  const names = state.nodes.map(n => n.name).join(",");
  if (names !== known) {
    known = names;
    for (const s of document.querySelectorAll("select.nodes")) {
      s.innerHTML = "";
      state.nodes.forEach(n => s.appendChild(new Option(n.name, n.name)));
      if (s.classList.contains("last")) s.selectedIndex = state.nodes.length - 1;
      if (s.classList.contains("second")) s.selectedIndex = Math.min(1, state.nodes.length - 1);
    }
    const links = document.getElementById("eve-link"); links.innerHTML = "";
    state.links.forEach(l => links.appendChild(new Option(l.name, l.name)));
  }
  const p = positions(state.nodes);
  svg.innerHTML = "";
  for (const l of state.links) {
    const [x1, y1] = p[l.a], [x2, y2] = p[l.b];
    // Red: disconnected, an eavesdropper switched on, or a QBER no key survives (above 11%).
    const tapped = l.eavesdropper > 0 || l.qber > 0.11;
    const cls = "link" + (l.up ? "" : " down") + (tapped ? " eve" : "");
    const g = el("g", {class: cls, "data-link": l.name, "data-rate": l.pairs_per_s || 0});
    g.appendChild(el("line", {x1, y1, x2, y2}));
    const mx = (x1 + x2) / 2, my = (y1 + y2) / 2;
    g.appendChild(el("text", {x: mx, y: my - 22, "text-anchor": "middle"}, l.name + " · " + l.length_km + " km"));
    g.appendChild(el("text", {x: mx, y: my - 8, "text-anchor": "middle", class: "rate"},
        fmt(l.pairs_per_s, 1) + " pairs/s · F " + fmt(l.fidelity, 3)));
    const notes = [];
    if (l.qber !== undefined) notes.push("QBER " + fmt(100 * l.qber, 1) + "%");
    if (l.eavesdropper > 0) notes.push("eavesdropper " + fmt(100 * l.eavesdropper, 0) + "%");
    if (!l.up) notes.push("DOWN");
    if (notes.length) g.appendChild(el("text", {x: mx, y: my + 16, "text-anchor": "middle", class: "notes"},
        notes.join(" · ")));
    svg.appendChild(g);
  }
  for (const n of state.nodes) {
    const [x, y] = p[n.name];
    const g = el("g", {class: "node" + (n.up ? "" : " down"), "data-node": n.name});
    g.appendChild(el("circle", {cx: x, cy: y, r: 26}));
    g.appendChild(el("text", {x, y: y + 4, "text-anchor": "middle", class: "name"}, n.name));
    g.appendChild(el("text", {x, y: y + 44, "text-anchor": "middle"},
        n.up ? "memory " + n.memory_in_use + "/" + n.memory : "DOWN"));
    svg.appendChild(g);
  }
  const rows = document.querySelector("#nodes tbody"); rows.innerHTML = "";
  for (const n of state.nodes) {
    const tr = rows.insertRow();
    tr.insertCell().textContent = n.name + (n.up ? "" : " (down)");
    tr.insertCell().textContent = n.up ? n.memory_in_use + " / " + n.memory : "-";
    tr.insertCell().textContent = n.qkd_qber === undefined ? "-" : (100 * n.qkd_qber).toFixed(2) + "%";
    tr.insertCell().textContent = (n.key_pools || []).map(k => k.peer + ": " + k.bits).join(", ") || "-";
  }
  const jobs = document.querySelector("#jobs tbody"); jobs.innerHTML = "";
  for (const j of state.requests || []) {
    const tr = jobs.insertRow();
    tr.insertCell().textContent = j.kind + " " + j.from + " → " + j.to;
    tr.insertCell().textContent = j.done + " / " + j.amount + " " + j.unit;
    tr.insertCell().textContent = j.state;
  }
}
async function post(path, body, out, started) {
  try {
    const r = await fetch(path, {method: "POST", body: JSON.stringify(body),
        headers: {"Content-Type": "application/json", "X-Qnet-Token": token}});
    const answer = await r.json();
    out.className = "result" + (r.ok ? "" : " error");
    out.textContent = r.ok ? started(answer) : answer.message;
  } catch (e) { out.className = "result error"; out.textContent = String(e); }
}
const value = id => document.getElementById(id).value;
document.getElementById("entangle").addEventListener("submit", ev => {
  ev.preventDefault();
  const body = {from: value("from"), to: value("to"), pairs: Number(value("pairs"))};
  post("/api/entangle", body, document.getElementById("result"),
       () => "started: " + body.pairs + " pairs " + body.from + " → " + body.to);
});
document.getElementById("qkd").addEventListener("submit", ev => {
  ev.preventDefault();
  const body = {from: value("qkd-from"), to: value("qkd-to"), bits: Number(value("qkd-bits")),
                pairs_per_block: Number(value("qkd-block"))};
  post("/api/qkd", body, document.getElementById("qkd-result"),
       () => "started: a " + body.bits + "-bit key " + body.from + " → " + body.to);
});
document.getElementById("eavesdrop").addEventListener("submit", ev => {
  ev.preventDefault();
  const body = {link: value("eve-link"), fraction: Number(value("eve-fraction"))};
  post("/api/eavesdrop", body, document.getElementById("eve-result"), answer => answer.message);
});
const events = new EventSource("/api/events?token=" + encodeURIComponent(token));
events.onmessage = e => render(JSON.parse(e.data));
events.onerror = () => { document.getElementById("updated").textContent = "disconnected: retrying"; };
</script></body></html>
)HTML";

std::string RandomToken() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return "";
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

// Requests the page started: their progress goes into every snapshot.
class PageRequests {
 public:
  ~PageRequests() {
    for (Job& j : jobs_) {
      if (j.thread.joinable()) j.thread.join();
    }
  }
  // MEASURE pairs (BB84 bases) from `from` (at `address`) to `to`.
  absl::Status StartEntangle(const std::string& from, const std::string& address, const std::string& to,
                             uint32_t pairs) {
    return Start("entangle", from, to, pairs, "pairs", [address, to, pairs](const std::function<void(uint64_t)>& progress) {
      v1::EntangleRequest request;
      request.set_remote_node(to);
      request.set_pairs(pairs);
      request.set_type(v1::EntangleRequest::MEASURE);
      request.set_basis(v1::EntangleRequest::BB84);
      request.set_timeout_s(600);
      uint64_t delivered = 0;
      auto result = cli::RunEntangle(address, request, absl::Minutes(10),
                                     [&](const v1::PairEvent&) { progress(++delivered); });
      return result.ok() ? std::string("done") : absl::StrCat("failed: ", result.status().message());
    });
  }
  // A BBM92 key of `bits` between `from` and `to`; its QKD samples give the
  // QBER the page shows on the links between neighbours.
  absl::Status StartQkd(const std::string& from, const std::string& address, const std::string& to, uint32_t bits,
                        uint32_t pairs_per_block) {
    return Start("qkd", from, to, bits, "key bits",
                 [address, to, bits, pairs_per_block](const std::function<void(uint64_t)>& progress) {
      v1::QkdRequest request;
      request.set_peer(to);
      request.set_protocol(v1::QkdRequest::BBM92);
      request.set_bits(bits);
      request.set_pairs_per_block(pairs_per_block);
      request.set_max_blocks(10);  // a page request ends in minutes, not at the default 100 blocks
      auto result = cli::RunQkd(address, request, absl::Minutes(30), [&](const v1::QkdProgress& p) {
        progress(p.total_key_bits() + p.final_key_bits());  // the blocks before, and this one's so far
      });
      if (!result.ok()) return absl::StrCat("failed: ", result.status().message());
      progress(result->final_key_bits());
      return absl::StrFormat("done: %d bits, QBER Z %.2f%%, X %.2f%%", result->final_key_bits(),
                             100 * result->qber_z(), 100 * result->qber_x());
    });
  }
  Json Snapshot() const {
    std::lock_guard lock(mu_);
    Json out = Json::array();
    for (const Job& j : jobs_) {
      out.push_back({{"kind", j.kind}, {"from", j.from}, {"to", j.to}, {"amount", j.amount}, {"unit", j.unit},
                     {"done", j.done}, {"state", j.state}});
    }
    return out;
  }

 private:
  struct Job {
    std::string kind, from, to, unit;
    uint64_t amount = 0;
    uint64_t done = 0;
    std::string state = "running";
    std::thread thread;
  };
  // Runs `work` on its own thread (it reports progress and returns the final
  // state); ResourceExhausted when kMaxPageRequests are running.
  absl::Status Start(const std::string& kind, const std::string& from, const std::string& to, uint64_t amount,
                     const std::string& unit,
                     std::function<std::string(const std::function<void(uint64_t)>&)> work) {
    std::lock_guard lock(mu_);
    int running = 0;
    for (const Job& j : jobs_) running += j.state == "running";
    if (running >= kMaxPageRequests) {
      return absl::ResourceExhaustedError(
          absl::StrCat(kMaxPageRequests, " requests from this page are running: wait for one to end"));
    }
    while (jobs_.size() >= 8 && jobs_.front().state != "running") {
      if (jobs_.front().thread.joinable()) jobs_.front().thread.join();
      jobs_.pop_front();
    }
    Job& job = jobs_.emplace_back();
    job.kind = kind;
    job.from = from;
    job.to = to;
    job.amount = amount;
    job.unit = unit;
    job.thread = std::thread([this, &job, work = std::move(work)] {
      std::string state = work([this, &job](uint64_t done) {
        std::lock_guard progress_lock(mu_);
        job.done = done;
      });
      std::lock_guard end_lock(mu_);
      job.state = std::move(state);
    });
    return absl::OkStatus();
  }

  mutable std::mutex mu_;
  std::list<Job> jobs_;  // a list: threads hold references to their Job
};

// A JSON answer {"message": ...} with `status`.
void Answer(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(Json{{"message", message}}.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

std::string WithRequests(const std::string& snapshot, const PageRequests& requests) {
  Json j = Json::parse(snapshot, nullptr, false);
  if (!j.is_object()) return snapshot;
  j["requests"] = requests.Snapshot();
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

int Ui(const Args& args, bool json) {
  if (!args.positional.empty()) return Fail("ui takes no positional arguments (see qnetctl ui --help)");
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto network = StateNetwork(*dir);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  const std::string listen = Flag(args, "--listen", "127.0.0.1:0");
  absl::StatusOr<std::pair<std::string, int>> address = security::ParseListenAddress(listen);
  if (!address.ok()) return Fail(std::string(address.status().message()));
  if (address->first != "127.0.0.1" && address->first != "::1" && address->first != "localhost") {
    return Fail(absl::StrCat("--listen: the page serves on the loopback interface only, not ", address->first));
  }

  absl::StatusOr<std::optional<ClientCertificate>> certificate = ClientCertificateFiles(*dir);
  if (!certificate.ok()) return Fail(std::string(certificate.status().message()));
  NetworkView::Credentials credentials;
  if (certificate->has_value()) {
    credentials = {(*certificate)->ca_file, (*certificate)->cert_file, (*certificate)->key_file};
  }
  // SIGINT/SIGTERM end the page; blocked before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string token = RandomToken();
  if (token.empty()) return Fail("no random token: OpenSSL's generator failed");
  NetworkView view(*dir, *network, credentials);
  PageRequests requests;
  std::atomic<bool> stopping{false};
  const config::NetworkConfig& net = view.network();

  auto authorised = [&token](const httplib::Request& req) {
    std::string given = req.get_header_value("X-Qnet-Token");
    if (given.empty() && req.method == "GET") given = req.get_param_value("token");
    // Equal length first; then every byte, not stopping at the first difference.
    if (given.size() != token.size()) return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < token.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ token[i]);
    return diff == 0;
  };
  auto refuse = [](httplib::Response& res) {
    res.status = 403;
    res.set_content(R"({"message":"a missing or wrong token: open the URL qnetctl ui printed"})", "application/json");
  };
  absl::StatusOr<std::unique_ptr<security::HttpsServer>> server = security::HttpsServer::Start(
      {.listen = listen, .what = "the ui", .worker_threads = 8, .max_body_bytes = 4096},
      [&](httplib::Server& s) {
        s.Get("/", [&](const httplib::Request& req, httplib::Response& res) {
          if (!authorised(req)) return refuse(res);
          res.set_header("Cache-Control", "no-store");
          res.set_header("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'");
          res.set_content(kPage, "text/html; charset=utf-8");
        });
        s.Get("/api/state", [&](const httplib::Request& req, httplib::Response& res) {
          if (!authorised(req)) return refuse(res);
          res.set_content(WithRequests(view.Latest().second, requests), "application/json");
        });
        s.Get("/api/events", [&](const httplib::Request& req, httplib::Response& res) {
          if (!authorised(req)) return refuse(res);
          res.set_header("Cache-Control", "no-store");
          auto seen = std::make_shared<uint64_t>(0);
          res.set_chunked_content_provider("text/event-stream", [&, seen](size_t, httplib::DataSink& sink) {
            if (stopping) return false;
            auto [version, snapshot] = view.WaitNewer(*seen, std::chrono::milliseconds(1000));
            if (version == *seen) return sink.write(": idle\n\n", 8);  // keeps the connection, notices a gone client
            *seen = version;
            const std::string event = absl::StrCat("data: ", WithRequests(snapshot, requests), "\n\n");
            return sink.write(event.data(), event.size());
          });
        });
        // Entangle (pairs) and QKD (bits) between two nodes, started from `from`.
        for (const std::string kind : {"entangle", "qkd"}) {
          s.Post("/api/" + kind, [&, kind](const httplib::Request& req, httplib::Response& res) {
            if (!authorised(req)) return refuse(res);
            const std::string amount_name = kind == "qkd" ? "bits" : "pairs";
            const int64_t most = 100000;
            Json body = Json::parse(req.body, nullptr, false);
            if (!body.is_object() || !body["from"].is_string() || !body["to"].is_string() ||
                !body[amount_name].is_number_integer()) {
              return Answer(res, 400, absl::StrCat("want {\"from\": NODE, \"to\": NODE, \"", amount_name, "\": N}"));
            }
            const std::string from = body["from"], to = body["to"];
            const int64_t amount = body[amount_name];
            if (net.FindNode(from) == nullptr || net.FindNode(to) == nullptr || from == to) {
              return Answer(res, 400, "from and to must be two different nodes of the network");
            }
            if (amount < 1 || amount > most) return Answer(res, 400, absl::StrCat(amount_name, " must be from 1 to ", most));
            absl::StatusOr<std::string> node_address = NodeAddress(*dir, from);
            if (!node_address.ok()) return Answer(res, 503, std::string(node_address.status().message()));
            // QKD: raw pairs per block, optional (the daemons' default otherwise).
            int64_t block = 20000;
            if (kind == "qkd" && body.contains("pairs_per_block")) {
              if (!body["pairs_per_block"].is_number_integer()) return Answer(res, 400, "pairs_per_block must be a number");
              block = body["pairs_per_block"];
              if (block < 1000 || block > 1000000) return Answer(res, 400, "pairs_per_block must be from 1000 to 1000000");
            }
            absl::Status started =
                kind == "qkd" ? requests.StartQkd(from, *node_address, to, static_cast<uint32_t>(amount),
                                                  static_cast<uint32_t>(block))
                              : requests.StartEntangle(from, *node_address, to, static_cast<uint32_t>(amount));
            if (!started.ok()) return Answer(res, 429, std::string(started.message()));
            Answer(res, 202, "started");
          });
        }
        // The intercept-resend eavesdropper on a link: {"link": NAME, "fraction": X in [0, 1]}.
        s.Post("/api/eavesdrop", [&](const httplib::Request& req, httplib::Response& res) {
          if (!authorised(req)) return refuse(res);
          Json body = Json::parse(req.body, nullptr, false);
          if (!body.is_object() || !body["link"].is_string() || !body["fraction"].is_number()) {
            return Answer(res, 400, "want {\"link\": LINK, \"fraction\": X}");
          }
          const double fraction = body["fraction"];
          if (!(fraction >= 0 && fraction <= 1)) return Answer(res, 400, "fraction must be in [0, 1]");
          absl::StatusOr<v1::EavesdropResponse> set = EavesdropOnLink(*dir, net, body["link"], fraction);
          if (!set.ok()) {
            return Answer(res, set.status().code() == absl::StatusCode::kNotFound ? 404 : 503,
                          std::string(set.status().message()));
          }
          Answer(res, 200, absl::StrFormat("eavesdropper on %s at %g, in force at %s",
                                           std::string(body["link"]), set->fraction(), set->node()));
        });
      });
  if (!server.ok()) return Fail(std::string(server.status().message()));
  const std::string url = absl::StrCat((*server)->url(), "/?token=", token);
  if (json) {
    std::cout << Json{{"url", url}, {"network", net.name}}.dump() << std::endl;
  } else {
    std::cout << "qnet ui for network " << net.name << " at " << url << "\n(Ctrl-C stops it)" << std::endl;
  }
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  stopping = true;
  server->reset();
  // Requests the page started end with this process: their daemons see the
  // client go and cancel them at both ends (as for Ctrl-C on `entangle`),
  // rather than Ctrl-C waiting for them here.
  std::cout.flush();
  std::_Exit(0);
}

}  // namespace

std::vector<Command> UiCommands() {
  return {
      {"ui",
       {"--listen"},
       R"(Usage: qnetctl ui [--listen 127.0.0.1:PORT]

Serves a live page of the running network on the loopback interface (a free
port by default) and prints its URL, which carries a random token: open it in
a browser on this machine. The page shows the topology (nodes, links with
length, each link's pair rate, mean fidelity estimate and the QBER of the
newest QKD samples between its ends), memory in use, QKD error rates and key
pools per node, and requests started from it; a node that is down, a link
that is disconnected, has an eavesdropper or a QBER above 11% (no key
survives) is red. It updates once a second (server-sent events), can start an
entangle request (MEASURE pairs) or a BBM92 key, and can switch an
eavesdropper on a link on or off. The figures come from the daemons' status and Prometheus endpoints,
read with the operator's certificate. Ctrl-C stops it.
)",
       Ui},
  };
}

}  // namespace qnet::qnetctl
