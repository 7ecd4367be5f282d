#include "ctl/logs.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <queue>

namespace millions::ctl::logs {
namespace {

namespace json = boost::json;

bool Digits(std::string_view s, size_t at, size_t n, int* out) {
  if (at + n > s.size()) return false;
  int v = 0;
  for (size_t i = at; i < at + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

int64_t ToMillis(int year, int mon, int day, int h, int m, int s) {
  struct tm tm {};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = s;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

// Redis: "PID:R DD Mon YYYY HH:MM:SS.mmm ..." (the part after the first space).
std::optional<int64_t> ParseRedisTime(std::string_view s) {
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  int day, year, h, m, sec, ms = 0;
  if (s.size() < 20 || !Digits(s, 0, 2, &day) || s[2] != ' ' || s[6] != ' ' ||
      !Digits(s, 7, 4, &year) || s[11] != ' ' || !Digits(s, 12, 2, &h) || s[14] != ':' ||
      !Digits(s, 15, 2, &m) || s[17] != ':' || !Digits(s, 18, 2, &sec))
    return std::nullopt;
  int mon = 0;
  for (int i = 0; i < 12; ++i)
    if (s.substr(3, 3) == kMonths[i]) mon = i + 1;
  if (mon == 0) return std::nullopt;
  if (s.size() >= 24 && s[20] == '.') Digits(s, 21, 3, &ms);
  return ToMillis(year, mon, day, h, m, sec) + ms;
}

// An engine's text line: its time where it has one of the forms we know (Patroni and
// PostgreSQL at the start; NATS after "[PID] "; Redis after "PID:R ").
std::optional<int64_t> EngineTime(std::string_view line) {
  if (auto t = ParseTime(line)) return t;
  if (!line.empty() && line[0] == '[') {
    if (auto at = line.find("] "); at != std::string_view::npos && at < 16)
      return ParseTime(line.substr(at + 2));
  }
  if (auto at = line.find(' '); at != std::string_view::npos && at < 16)
    return ParseRedisTime(line.substr(at + 1));
  return std::nullopt;
}

std::string EngineLevel(std::string_view line) {
  std::string_view head = line.substr(0, 96);
  auto has = [&](const char* s) { return head.find(s) != std::string_view::npos; };
  if (has("[ERR]") || has("[FTL]") || has("ERROR") || has("FATAL") || has("PANIC")) return "error";
  if (has("[WRN]") || has("WARNING") || has(" # ")) return "warn";
  if (has("[DBG]") || has("[TRC]") || has("DEBUG")) return "debug";
  return "info";
}

int Rank(std::string_view level) {
  if (level == "debug") return 0;
  if (level == "warn" || level == "warning") return 2;
  if (level == "error" || level == "fatal" || level == "panic" || level == "dpanic") return 3;
  return 1;
}

std::string Str(const json::object& o, const char* key) {
  if (auto* v = o.if_contains(key); v && v->is_string()) return std::string(v->as_string());
  return "";
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Reads complete lines of one file from a position, tracking where it got to. A last line
// without its newline is still being written: it is left for the next read.
class LineReader {
 public:
  LineReader(Source src, Position start) : src_(std::move(src)), pos_(std::move(start)) {
    struct stat st {};
    if (stat(src_.path.c_str(), &st) == 0) {
      if (pos_.inode != 0 && (pos_.inode != st.st_ino || uint64_t(st.st_size) < pos_.offset))
        pos_.offset = 0;  // re-created (a restart's new file) or truncated
      pos_.inode = st.st_ino;
    }
    in_.open(src_.path, std::ios::binary);
    if (in_) in_.seekg(static_cast<std::streamoff>(pos_.offset));
  }

  // The next record that passes `f`, or nothing at the end of the file.
  std::optional<Record> Next(const Filter& f) {
    std::string line;
    while (in_ && std::getline(in_, line)) {
      if (in_.eof()) break;  // no newline yet
      pos_.offset += line.size() + 1;
      auto r = Parse(line, src_, pos_.last_ts);
      if (!r) continue;
      pos_.last_ts = r->ts;
      if (Matches(*r, f)) return r;
    }
    return std::nullopt;
  }

  const Position& position() const { return pos_; }
  const std::string& path() const { return src_.path; }

 private:
  Source src_;
  Position pos_;
  std::ifstream in_;
};

}  // namespace

std::string FormatTs(int64_t wall_ms) {
  // Floored, so that a time before 1970 (an engine's odd clock) keeps the one form too.
  int64_t rem = ((wall_ms % 1000) + 1000) % 1000;
  time_t secs = static_cast<time_t>((wall_ms - rem) / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];  // (strftime's %Y does not pad a year before 1000 to four digits)
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(rem));
  return buf;
}

std::optional<int64_t> ParseTime(std::string_view s) {
  int year, mon, day, h, m, sec;
  if (s.size() < 19 || !Digits(s, 0, 4, &year) || !Digits(s, 5, 2, &mon) ||
      !Digits(s, 8, 2, &day) || !Digits(s, 11, 2, &h) || !Digits(s, 14, 2, &m) ||
      !Digits(s, 17, 2, &sec))
    return std::nullopt;
  bool dashes = s[4] == '-' && s[7] == '-', slashes = s[4] == '/' && s[7] == '/';
  if (!(dashes || slashes) || !(s[10] == 'T' || s[10] == 't' || s[10] == ' ') || s[13] != ':' ||
      s[16] != ':')
    return std::nullopt;
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || h > 23 || m > 59 || sec > 60)
    return std::nullopt;
  size_t i = 19;
  int ms = 0;
  if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
    int digits = 0;
    for (++i; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i, ++digits)
      if (digits < 3) ms = ms * 10 + (s[i] - '0');
    for (; digits < 3; ++digits) ms *= 10;
  }
  int64_t offset_ms = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!Digits(s, i + 1, 2, &oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !Digits(s, i + 4, 2, &om))
      return std::nullopt;
    offset_ms = (oh * 60 + om) * 60'000LL * (s[i] == '+' ? 1 : -1);
  }
  return ToMillis(year, mon, day, h, m, sec) + ms - offset_ms;
}

std::optional<std::string> ParseSince(std::string_view s, int64_t now_ms) {
  if (auto t = ParseTime(s)) return FormatTs(*t);
  size_t i = 0;
  double n = 0;
  bool any = false;
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i, any = true)
    n = n * 10 + (s[i] - '0');
  if (!any) return std::nullopt;
  std::string_view unit = s.substr(i);
  double ms;
  if (unit == "ms")
    ms = n;
  else if (unit == "s" || unit.empty())
    ms = n * 1e3;
  else if (unit == "m")
    ms = n * 60e3;
  else if (unit == "h")
    ms = n * 3600e3;
  else if (unit == "d")
    ms = n * 86400e3;
  else
    return std::nullopt;
  if (ms > 1e14) return std::nullopt;  // over 3000 years: a typo, not a time
  return FormatTs(now_ms - static_cast<int64_t>(ms));
}

std::optional<Record> Parse(std::string_view line, const Source& src, const std::string& last_ts) {
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (line.empty()) return std::nullopt;
  Record r;
  r.line = std::string(line);
  r.node = src.node;
  r.role = src.role;
  if (line.front() == '{') {
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (!ec && v.is_object()) {
      json::object& o = v.as_object();
      std::string ts = Str(o, "ts");
      r.json = o.contains("node") && o.contains("role") && !ts.empty();
      if (r.json) {
        r.ts = ts.size() == 24 && ts.back() == 'Z' ? ts : "";
        if (r.ts.empty()) {
          auto t = ParseTime(ts);
          r.ts = t ? FormatTs(*t) : last_ts;
        }
        r.node = Str(o, "node");
        r.role = Str(o, "role");
        r.level = Str(o, "level");
        r.msg = Str(o, "msg");
        // Copied rather than erased from: erase moves the last field into the hole.
        for (const auto& [k, val] : o)
          if (k != "ts" && k != "level" && k != "node" && k != "role" && k != "msg")
            r.other.emplace(k, val);
        return r;
      }
      // Another program's JSON (etcd): its time, level and message where it has them.
      if (auto t = ParseTime(ts))
        r.ts = FormatTs(*t);
      else if (auto* n = o.if_contains("ts"); n && n->is_number()) {
        double secs = n->to_number<double>();  // seconds since the epoch (zap's default)
        if (secs >= 0 && secs < 1e11) r.ts = FormatTs(static_cast<int64_t>(secs * 1000));
      }
      r.level = Str(o, "level");
      r.msg = Str(o, "msg");
    }
  }
  if (r.ts.empty()) {
    auto t = EngineTime(line);
    r.ts = t ? FormatTs(*t) : last_ts;
  }
  if (r.level.empty()) r.level = EngineLevel(line);
  if (r.msg.empty()) r.msg = r.line;
  return r;
}

bool Matches(const Record& r, const Filter& f) {
  if (!f.nodes.empty() && !Contains(f.nodes, r.node)) return false;
  if (!f.roles.empty() && !Contains(f.roles, r.role)) return false;
  // Engines' lines only when asked for: by --engines, or by naming their node or role.
  if (!r.json && !f.engines && f.nodes.empty() && f.roles.empty()) return false;
  if (!f.level.empty() && Rank(r.level) < Rank(f.level)) return false;
  if (!f.since.empty() && r.ts < f.since) return false;
  if (!f.request_id.empty() && (!r.json || Str(r.other, "request_id") != f.request_id))
    return false;
  if (!f.trace_id.empty() && (!r.json || Str(r.other, "trace_id") != f.trace_id)) return false;
  return true;
}

std::string Readable(const Record& r) {
  std::string ts = r.ts.empty() ? std::string(24, '-') : r.ts;
  char head[96];
  snprintf(head, sizeof head, "%s %-10s %-5s ", ts.c_str(), r.node.c_str(), r.level.c_str());
  std::string s = head + (r.json ? r.msg : r.line);
  if (!r.json) return s;
  for (const auto& [k, v] : r.other) {
    s += " ";
    s += k;
    s += "=";
    if (v.is_string()) {
      std::string_view text = v.as_string();
      bool quote = text.empty() || text.find_first_of(" \"=") != std::string_view::npos;
      s += quote ? json::serialize(v) : std::string(text);
    } else {
      s += json::serialize(v);
    }
  }
  return s;
}

Positions Merge(const std::vector<Source>& sources, const Filter& f, const Sink& out) {
  std::vector<std::unique_ptr<LineReader>> readers;
  std::vector<std::optional<Record>> heads;
  // Smallest time first; ties in source order, so the merge is stable.
  using Item = std::pair<std::string, size_t>;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
  for (const auto& s : sources) {
    readers.push_back(std::make_unique<LineReader>(s, Position{}));
    heads.push_back(readers.back()->Next(f));
    if (heads.back()) heap.push({heads.back()->ts, readers.size() - 1});
  }
  while (!heap.empty()) {
    size_t i = heap.top().second;
    heap.pop();
    out(*heads[i]);
    heads[i] = readers[i]->Next(f);
    if (heads[i]) heap.push({heads[i]->ts, i});
  }
  Positions pos;
  for (const auto& r : readers) pos[r->path()] = r->position();
  return pos;
}

void Follower::Poll(const std::vector<Source>& sources, const Sink& out) {
  std::vector<Record> batch;
  for (const auto& s : sources) {
    LineReader reader(s, pos_[s.path]);
    while (auto r = reader.Next(f_)) batch.push_back(std::move(*r));
    pos_[s.path] = reader.position();
  }
  std::stable_sort(batch.begin(), batch.end(),
                   [](const Record& a, const Record& b) { return a.ts < b.ts; });
  for (const auto& r : batch) out(r);
}

std::vector<Source> FindSources(const std::string& run_dir,
                                const std::map<std::string, std::string>& roles) {
  namespace fs = std::filesystem;
  std::vector<Source> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir + "/logs", ec)) {
    if (e.path().extension() != ".log") continue;
    std::string node = e.path().stem().string();
    auto it = roles.find(node);
    out.push_back({e.path().string(), node, it == roles.end() ? "" : it->second});
  }
  if (fs::exists(run_dir + "/runner.log", ec))
    out.push_back({run_dir + "/runner.log", "runner", "runner"});
  std::sort(out.begin(), out.end(),
            [](const Source& a, const Source& b) { return a.node < b.node; });
  return out;
}

}  // namespace millions::ctl::logs
