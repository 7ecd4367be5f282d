// `millions logs`: every node's log of a run, merged in time order and filtered. Each node's
// stderr is a file under RUN_DIR/logs (NAME.log), already in time order: a k-way merge reads one
// record per file at a time, so a big run is never loaded whole. Our own nodes write one JSON
// object a line (CONTRACT.md, Logs); the engines (PostgreSQL under Patroni, etcd, Redis, NATS)
// write their own text, shown only when asked for (--engines, or --node / --role naming them),
// with the file's node name and a best-effort time (the line's own when it has a known form,
// else the time of the line before it). Follow mode polls the files, picks up nodes added while
// following and files re-created or truncated (read again from their start).
// Thread-safety: functions and a Follower used by one thread. Ownership: values; files are
// opened and closed within each call.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace millions::ctl::logs {

// One log file and the node it belongs to. role: from the topology (engines' files), may be
// empty; our nodes' lines name their role themselves.
struct Source {
  std::string path, node, role;
};

// Filters combine with AND; an empty one lets everything through.
struct Filter {
  std::vector<std::string> nodes;
  std::vector<std::string> roles;
  std::string level;  // the lowest level shown: debug | info | warn | error; empty: all
  std::string since;  // a time as Record::ts writes it; empty: from the start
  std::string request_id, trace_id;
  bool engines = false;  // the engines' text lines of every node too
};

struct Record {
  std::string ts;  // "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC): compared as a string
  std::string node, role, level, msg;
  std::string line;           // the line as written
  bool json = false;          // one of our nodes' JSON lines (else an engine's text)
  boost::json::object other;  // a JSON line's fields beyond ts, level, node, role, msg
};

// A time in Record::ts' form, from milliseconds since the epoch.
std::string FormatTs(int64_t wall_ms);
// Parses an RFC 3339 time (fraction and offset optional; also "YYYY-MM-DD HH:MM:SS,fff" and
// "YYYY/MM/DD" dates, as engines write them) at the start of `s`; milliseconds since the epoch.
std::optional<int64_t> ParseTime(std::string_view s);
// --since: a duration before now_ms ("90s", "15m", "2h", "1d", "500ms") or an RFC 3339 time;
// nothing when it is neither.
std::optional<std::string> ParseSince(std::string_view s, int64_t now_ms);

// One line of `src`'s file. last_ts: the time of the file's line before (an engine line
// without a time of its own gets it). Nothing for an empty line.
std::optional<Record> Parse(std::string_view line, const Source& src, const std::string& last_ts);
bool Matches(const Record& r, const Filter& f);
// The readable form: time, node, level, msg, then the other fields as key=value.
std::string Readable(const Record& r);

using Sink = std::function<void(const Record&)>;

// Where each file was read up to (complete lines only), by path.
struct Position {
  uint64_t offset = 0;
  uint64_t inode = 0;
  std::string last_ts;
};
using Positions = std::map<std::string, Position>;

// The k-way merge: every matching record of every source, in time order (ties: in source
// order). Returns where each file was read up to, for a Follower to go on from.
Positions Merge(const std::vector<Source>& sources, const Filter& f, const Sink& out);

// Follow mode: each Poll writes, in time order, the matching records added since the last one.
class Follower {
 public:
  Follower(Filter f, Positions start) : f_(std::move(f)), pos_(std::move(start)) {}
  // A source not seen before is read from its start; one whose file was replaced (another
  // inode) or truncated too.
  void Poll(const std::vector<Source>& sources, const Sink& out);

 private:
  Filter f_;
  Positions pos_;
};

// The sources of a run: RUN_DIR/logs/*.log (node = the file's name) and RUN_DIR/runner.log
// (a detached runner's own log), sorted by node. roles: node name -> role, for engines' files.
std::vector<Source> FindSources(const std::string& run_dir,
                                const std::map<std::string, std::string>& roles);

}  // namespace millions::ctl::logs

namespace millions::ctl {

// `millions logs`' flags (src/cmd/main.cc explains them).
struct LogsFlags {
  std::string topology = "topologies/local.toml";
  logs::Filter filter;
  std::string since;  // as typed: ParseSince
  bool follow = false;
  bool json = false;
};

// Prints the run's merged log; 1 when the topology's run dir has no logs, 2 for a bad --since.
// With follow, goes on until SIGINT/SIGTERM (then 0).
int RunLogs(const LogsFlags& flags);

}  // namespace millions::ctl
