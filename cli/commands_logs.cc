// qnetctl logs: the daemons' logs of a network started by `qnetctl up`
// (<state-dir>/<node>.log), merged into one time line, optionally only the
// lines of one request (its circuit id, e.g. alice#3, which every daemon on
// the path logs), and followed as they grow.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/qnetctl_command.h"

namespace qnet::qnetctl {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

struct LogLine {
  std::string time;  // sortable: "2026-12-05T07:35:55.712..." ("" when the line has none)
  size_t node_index = 0;
  size_t order = 0;  // within its file
  std::string text;
  Json json;  // the parsed line (JSON logs), else null
};

// One daemon's log, read from `offset` on; complete lines only.
struct LogFile {
  std::string node;
  fs::path path;
  std::streamoff offset = 0;
  std::string last_time;  // lines without a time of their own go with the one before
};

std::vector<LogLine> ReadNew(LogFile& file, size_t node_index) {
  std::vector<LogLine> out;
  std::error_code ec;
  const auto size = fs::file_size(file.path, ec);
  if (ec) return out;  // not there (yet)
  if (static_cast<std::streamoff>(size) < file.offset) {
    // Started anew (qnetctl up truncates a node's log): read from its start.
    file.offset = 0;
    file.last_time.clear();
  }
  std::ifstream in(file.path, std::ios::binary);
  if (!in) return out;
  in.seekg(file.offset);
  std::string line;
  size_t order = 0;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline yet: the daemon is still writing it
    file.offset += static_cast<std::streamoff>(line.size() + 1);
    LogLine l;
    l.node_index = node_index;
    l.order = order++;
    l.text = line;
    if (!line.empty() && line.front() == '{') {
      l.json = Json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (l.json.is_object() && l.json.contains("time") && l.json["time"].is_string()) {
        file.last_time = l.json["time"].get<std::string>();
      }
    } else if (line.size() >= 23 && line[4] == '-' && line[10] == ' ' && line[13] == ':') {
      // "2026-12-05 07:35:55.712 I alice t=... message"
      file.last_time = line.substr(0, 10) + "T" + line.substr(11, 12);
    }
    l.time = file.last_time;
    out.push_back(std::move(l));
  }
  return out;
}

// Whether the line belongs to request `id` (an end-to-end request's
// circuit id, alice#897545404417): the circuit field of a JSON line, or the
// "circuit=ID" tag of a text line.
bool OfRequest(const LogLine& l, const std::string& id) {
  if (l.json.is_object()) {
    return l.json.contains("circuit") && l.json["circuit"].is_string() && l.json["circuit"].get<std::string>() == id;
  }
  const std::string tag = absl::StrCat("circuit=", id);
  for (size_t at = l.text.find(tag); at != std::string::npos; at = l.text.find(tag, at + 1)) {
    const size_t end = at + tag.size();
    if (end == l.text.size() || l.text[end] == ' ' || l.text[end] == ']') return true;
  }
  return false;
}

void Print(const LogLine& l, const std::vector<LogFile>& files, bool json) {
  if (!json || l.json.is_object()) {
    std::cout << l.text << "\n";
    return;
  }
  std::cout << Json{{"node", files[l.node_index].node}, {"line", l.text}}.dump(-1, ' ', false,
                                                                              Json::error_handler_t::replace)
            << "\n";
}

// The circuit id of an end-to-end pair id as `entangle` prints it
// (alice-charlie#c50832867330.0 -> alice#50832867330); any other id as given.
std::string CircuitOf(const std::string& id, const config::NetworkConfig& network) {
  const size_t hash = id.find("#c");
  const size_t dot = id.rfind('.');
  if (hash == std::string::npos || dot == std::string::npos || dot < hash) return id;
  const std::string ends = id.substr(0, hash);
  for (const config::NodeConfig& n : network.nodes) {
    if (absl::StartsWith(ends, n.name + "-") && network.FindNode(ends.substr(n.name.size() + 1)) != nullptr) {
      return absl::StrCat(n.name, "#", id.substr(hash + 2, dot - hash - 2));
    }
  }
  return id;
}

// Returns the number of lines printed.
size_t PrintMerged(std::vector<LogLine> lines, const std::vector<LogFile>& files, const std::string& request,
                   bool json) {
  size_t printed = 0;
  std::stable_sort(lines.begin(), lines.end(), [](const LogLine& a, const LogLine& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.node_index != b.node_index) return a.node_index < b.node_index;
    return a.order < b.order;
  });
  for (const LogLine& l : lines) {
    if (request.empty() || OfRequest(l, request)) {
      Print(l, files, json);
      ++printed;
    }
  }
  std::cout.flush();
  return printed;
}

int Logs(const Args& args, bool json) {
  if (!args.positional.empty()) return Fail("logs takes no positional arguments (see qnetctl logs --help)");
  auto dir = StateDir(args);
  if (!dir.ok()) return Fail(std::string(dir.status().message()));
  auto network = StateNetwork(*dir);
  if (!network.ok()) return Fail(std::string(network.status().message()));
  std::vector<LogFile> files;
  const std::string only = Flag(args, "--node");
  for (const config::NodeConfig& n : network->nodes) {
    if (!only.empty() && n.name != only) continue;
    files.push_back(LogFile{n.name, *dir / (n.name + ".log")});
  }
  if (files.empty()) return Fail(absl::StrCat("unknown node '", only, "' (not in network ", network->name, ")"));
  const std::string request = CircuitOf(Flag(args, "--request"), *network);
  const std::string follow = Flag(args, "--follow", "no");
  if (follow != "yes" && follow != "no") return Fail(absl::StrCat("--follow wants yes or no, got '", follow, "'"));

  std::vector<LogLine> lines;
  for (size_t i = 0; i < files.size(); ++i) {
    std::vector<LogLine> read = ReadNew(files[i], i);
    lines.insert(lines.end(), std::make_move_iterator(read.begin()), std::make_move_iterator(read.end()));
  }
  const size_t printed = PrintMerged(std::move(lines), files, request, json);
  if (printed == 0 && !request.empty() && follow == "no") {
    return Fail(absl::StrCat("no log line of request ", request,
                             " (a circuit id such as alice#897545404417, or an end-to-end pair id such as "
                             "alice-charlie#c897545404417.0; only end-to-end requests have one)"));
  }
  // Followed in rounds: each round's new lines, merged (lines of different
  // rounds stay in the order they were read).
  while (follow == "yes") {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::vector<LogLine> fresh;
    for (size_t i = 0; i < files.size(); ++i) {
      std::vector<LogLine> read = ReadNew(files[i], i);
      fresh.insert(fresh.end(), std::make_move_iterator(read.begin()), std::make_move_iterator(read.end()));
    }
    PrintMerged(std::move(fresh), files, request, json);
  }
  return 0;
}

}  // namespace

std::vector<Command> LogCommands() {
  return {
      {"logs",
       {"--request", "--follow"},
       R"(Usage: qnetctl logs [--node NODE] [--request ID] [--follow yes]

The logs of the network's daemons (<state-dir>/<node>.log, as `qnetctl up`
started them), merged into one time line: every daemon, or --node's.

  --request ID   only the lines of one end-to-end request: its circuit id
                 (alice#897545404417: the requesting daemon logs it with the
                 request, and it and each repeater and the far end log the
                 circuit's set-up and end; a request retried for lack of
                 memory says which circuit it goes on as), or the id of one
                 of its pairs as `entangle` prints it
                 (alice-charlie#c897545404417.0). None found: an error
  --follow yes   keep printing lines as the daemons write them (Ctrl-C ends)

Logs are text unless the network was started with `qnetctl up --log-format
json` (qnetd --log-format json): then every line is one JSON object with
time (UTC), t_sim_s (the simulated clock), level, node, msg and, where they
apply, layer and circuit - for jq. With --output json, text
lines come as {"node": ..., "line": ...}.
)",
       Logs},
  };
}

}  // namespace qnet::qnetctl
