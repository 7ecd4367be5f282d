#include "ctl/chaos_matrix.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "core/config.h"
#include "core/env.h"
#include "core/http_client.h"
#include "core/topology.h"
#include "ctl/admin_token.h"
#include "ctl/ledger.h"
#include "ctl/process.h"
#include "ctl/secrets.h"

namespace millions::ctl {

namespace json = boost::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// ---- running it ------------------------------------------------------------------------------

namespace {

std::string S(const json::object& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : "";
}

class Matrix {
 public:
  explicit Matrix(const MatrixFlags& f) : f_(f) {
    topo::Topology t = topo::Topology::Load(f.topology);  // throws ConfigError: start-up
    auto hp = config::ParseHostPort(t.runner.admin);
    admin_host_ = hp.host;
    admin_port_ = hp.port;
    run_dir_ = std::filesystem::absolute(t.runner.run_dir).lexically_normal().string();
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe_ = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "millions";
  }

  int Run(const std::vector<Fault>& faults) {
    auto st = GetStatus();
    if (!st.ok()) {
      fprintf(stderr, "millions chaos matrix: %s\n", st.error().message.c_str());
      return 1;
    }
    std::string url = PublicUrl(*st);
    if (!ParseLoopbackUrl(url).ok()) {
      fprintf(stderr, "millions chaos matrix: the public URL '%s' is not a loopback http URL\n",
              url.c_str());
      return 1;
    }
    fprintf(stderr, "chaos matrix: %zu faults, %d s each, ledger on %s\n", faults.size(),
            f_.seconds, url.c_str());
    printf("%s\n", TableHeader().c_str());
    fflush(stdout);
    for (const Fault& fault : faults) {
      running_ = fault.Name();
      Publish(false);
      MatrixRow row = RunRow(fault);
      ClearProgress();
      rows_.push_back(row);
      printf("%s\n", TableLine(row).c_str());
      fflush(stdout);
    }
    running_.clear();
    Publish(true);
    return MatrixExitCode(rows_);
  }

 private:
  // ---- the runner's admin API ----
  // Read at each call: the runner this command started may have made the token just now.
  std::string Bearer() const {
    auto t = ReadAdminToken(run_dir_);
    return t ? "Bearer " + *t : "";
  }

  Result<json::value> GetStatus() {
    http::FetchRequest r;
    r.host = admin_host_;
    r.port = admin_port_;
    r.target = "/api/status";
    r.authorization = Bearer();
    r.timeout = milliseconds(10000);
    auto res = http::Fetch(r);
    if (!res.ok() || res->status != 200)
      return MakeError(Errc::kUnavailable, "not_running",
                       "no runner answers on " + admin_host_ + ":" + std::to_string(admin_port_) +
                           " (is `millions up` running?)");
    boost::system::error_code ec;
    auto v = json::parse(res->body, ec);
    if (ec) return MakeError(Errc::kInternal, "bad_status", "the runner's status is not JSON");
    return v;
  }

  static std::string PublicUrl(const json::value& st) {
    if (!st.is_object() || !st.as_object().contains("endpoints")) return "";
    const auto& e = st.as_object().at("endpoints");
    return e.is_object() ? S(e.as_object(), "public") : "";
  }

  Status Act(const std::string& node, const std::string& action, const std::string& query) {
    http::FetchRequest r;
    r.method = "POST";
    r.host = admin_host_;
    r.port = admin_port_;
    r.target = "/api/nodes/" + node + "/" + action + (query.empty() ? "" : "?" + query);
    r.authorization = Bearer();
    r.timeout = milliseconds(30000);
    auto res = http::Fetch(r);
    if (!res.ok())
      return MakeError(Errc::kUnavailable, "no_answer",
                       "the runner's admin API did not answer " + action + " " + node);
    if (res->status != 200)
      return MakeError(Errc::kInternal, "action_failed",
                       action + " " + node + ": " + res->body.substr(0, 200));
    return Ok();
  }

  // A planned restart of PostgreSQL by its Patroni (REST POST /restart).
  Status PatroniRestart(const std::string& rest) {
    auto hp = config::ParseHostPort(rest);
    http::FetchRequest r;
    r.method = "POST";
    r.host = hp.host;
    r.port = hp.port;
    r.target = "/restart";
    r.body = "{}";
    if (std::string auth = secrets::PatroniRestAuthorization(run_dir_); !auth.empty())
      r.headers.emplace_back("Authorization", auth);
    r.content_type = "application/json";
    r.timeout = milliseconds(60000);
    auto res = http::Fetch(r);
    if (!res.ok())
      return MakeError(Errc::kUnavailable, "no_answer", "Patroni " + rest + " did not answer");
    if (res->status != 200)
      return MakeError(
          Errc::kInternal, "restart_failed",
          "Patroni restart: " + std::to_string(res->status) + " " + res->body.substr(0, 200));
    return Ok();
  }

  pid_t RunnerPid() {
    std::ifstream in(run_dir_ + "/runner.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object() || !v.as_object().contains("pid")) return 0;
    return static_cast<pid_t>(v.as_object().at("pid").to_number<int64_t>());
  }

  // ---- progress and waiting ----
  // On a terminal, one line rewritten each second; otherwise (a log) a line per phase.
  void Progress(const std::string& phase) {
    std::string line = "  " + running_ + " " + target_ + ": " + phase;
    if (!tty_) {
      if (phase == last_phase_) return;
      last_phase_ = phase;
    }
    if (ledger_) {
      auto p = ledger_->Snapshot();
      char buf[160];
      snprintf(
          buf, sizeof buf, "  [%.0fs] acked %llu  failed writes %llu  failed reads %llu  jobs %llu",
          ledger_->Now(), static_cast<unsigned long long>(p.acked),
          static_cast<unsigned long long>(p.failed_writes),
          static_cast<unsigned long long>(p.failed_reads), static_cast<unsigned long long>(p.jobs));
      line += buf;
    }
    if (!tty_) {
      fprintf(stderr, "%s\n", line.c_str());
      return;
    }
    if (line.size() < progress_width_) line += std::string(progress_width_ - line.size(), ' ');
    progress_width_ = line.size();
    fprintf(stderr, "\r%s", line.c_str());
    fflush(stderr);
  }
  void ClearProgress() {
    last_phase_.clear();
    if (progress_width_ == 0) return;
    fprintf(stderr, "\r%s\r", std::string(progress_width_, ' ').c_str());
    progress_width_ = 0;
  }

  // Waits until done() or `limit`, showing `phase` each second; whether done() became true.
  bool WaitUntil(const std::string& phase, milliseconds limit, const std::function<bool()>& done,
                 milliseconds step = milliseconds(250)) {
    auto end = Clock::now() + limit;
    auto next_print = Clock::now();
    for (;;) {
      if (done && done()) return true;
      if (Clock::now() >= next_print) {
        Progress(phase);
        next_print = Clock::now() + milliseconds(1000);
      }
      if (Clock::now() >= end) return false;
      std::this_thread::sleep_for(std::min<Clock::duration>(step, end - Clock::now()));
    }
  }
  void Hold(const std::string& phase, int seconds) {
    WaitUntil(phase, milliseconds(seconds * 1000), nullptr);
  }

  // Full health per the runner's status; with `ack_after` >= 0, also an acknowledged write
  // after that ledger time.
  bool Healthy(double ack_after, std::string* waiting_on,
               const std::map<std::string, int64_t>& restarted = {}) {
    auto st = GetStatus();
    if (!st.ok()) {
      *waiting_on = "runner";
      return false;
    }
    Health h = HealthOf(*st, restarted);
    *waiting_on = h.waiting_on;
    if (!h.healthy) return false;
    if (ack_after >= 0 && ledger_ && ledger_->Snapshot().last_ack < ack_after) {
      *waiting_on = "a write acknowledged";
      return false;
    }
    return true;
  }

  // ---- the runner as a fault target ----
  Status KillRunner() {
    pid_t pid = RunnerPid();
    if (pid <= 0) return MakeError(Errc::kNotFound, "no_runner", "no runner pid in runner.json");
    if (kill(pid, SIGKILL) != 0)
      return MakeError(Errc::kInternal, "kill", "kill -9 " + std::to_string(pid) + " failed");
    WaitUntil("runner killed, waiting for it to end", milliseconds(10000),
              [pid] { return ProcessStartTicks(pid) == 0; });
    return Ok();
  }
  // `millions up TOPOLOGY --detach` (this binary), which adopts the running nodes.
  Status StartUp(std::string* note) {
    Spawn s;
    s.argv = {exe_, "up", f_.topology, "--detach"};
    s.log_path = run_dir_ + "/logs/chaos-matrix-up.log";
    auto pid = StartProcess(s);
    if (!pid.ok()) return pid.error();
    int status = 0;
    bool ended = WaitUntil("new `up --detach` adopting", milliseconds(240000),
                           [&] { return waitpid(*pid, &status, WNOHANG) == *pid; });
    if (!ended) {
      kill(*pid, SIGKILL);  // only the waiting parent: the runner it forked stays
      waitpid(*pid, &status, 0);
      return MakeError(Errc::kTimeout, "up_timeout", "new up did not finish in 240 s");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      *note = "new up failed (see " + s.log_path + ")";
      return MakeError(Errc::kInternal, "up_failed", *note);
    }
    return Ok();
  }

  // ---- one row ----
  Status Inject(const Fault& f, const FaultTarget& t, double* recovered_at) {
    const int S = f_.seconds;
    auto each = [&](const std::string& action, const std::string& query) -> Status {
      for (const auto& n : t.nodes)
        if (Status st = Act(n, action, query); !st.ok()) return st;
      return Ok();
    };
    std::string part = t.part.empty() ? "" : "part=" + t.part;
    auto join = [](std::string a, const std::string& b) {
      return a.empty() ? b : b.empty() ? a : a + "&" + b;
    };
    if (f.action == "none") {
      Hold("no fault (baseline)", S);
    } else if (f.role == "runner") {
      pid_t pid = RunnerPid();
      if (f.action == "pause") {
        if (pid <= 0 || kill(pid, SIGSTOP) != 0)
          return MakeError(Errc::kNotFound, "no_runner", "no runner to pause");
        Hold("runner paused", S);
        kill(pid, SIGCONT);
      } else {
        if (Status st = KillRunner(); !st.ok()) return st;
        if (f.action == "kill") Hold("runner dead, nodes unsupervised", S);
        *recovered_at = ledger_->Now();
        std::string note;
        if (Status st = StartUp(&note); !st.ok()) return st;
        return Ok();
      }
    } else if (f.action == "kill") {
      // Held down S seconds, like a machine. PostgreSQL alone has no hold: Patroni restarts it.
      if (Status st = each("kill", join("hold_ms=" + std::to_string(S * 1000), part)); !st.ok())
        return st;
      Hold("killed, held down", S);
    } else if (f.action == "pause") {
      if (Status st = each("stop", part); !st.ok()) return st;
      Hold("paused (SIGSTOP)", S);
      // Resuming matters more than anything: a node left paused spoils every later row.
      Status resumed = each("cont", "");
      for (int i = 0; i < 3 && !resumed.ok(); ++i) {
        Hold("resuming again", 2);
        resumed = each("cont", "");
      }
      if (!resumed.ok()) return resumed;
    } else if (f.role == "postgres-primary") {
      // restart: PostgreSQL restarted by its Patroni, as an operator plans it.
      if (t.rest.empty())
        return MakeError(Errc::kNotFound, "no_rest", "no Patroni REST address for the primary");
      if (Status st = PatroniRestart(t.rest); !st.ok()) return st;
    } else if (f.role == "db-host") {
      // restart: the whole host (Patroni and PostgreSQL) killed and started again at once.
      if (Status st = each("kill", join("hold_ms=0", part)); !st.ok()) return st;
    } else {
      if (Status st = each("restart", ""); !st.ok()) return st;
    }
    *recovered_at = ledger_->Now();
    return Ok();
  }

  MatrixRow RunRow(const Fault& f) {
    MatrixRow row;
    row.fault = f.Name();
    target_.clear();
    // Every row starts from full health, so that one row's aftermath is not the next's.
    std::string waiting_on;
    bool ready = WaitUntil(
        "waiting for full health before the fault", milliseconds(120000),
        [&] { return Healthy(-1, &waiting_on); }, milliseconds(500));
    auto st = GetStatus();
    if (!st.ok()) {
      row.failed = true;
      row.note = st.error().message;
      return row;
    }
    auto target = ResolveTarget(f, *st);
    if (!target.ok()) {
      row.skipped = true;
      row.note = target.error().message;
      return row;
    }
    if (f.role == "runner") {
      row.target = "runner";
    } else {
      for (const auto& n : target->nodes) row.target += (row.target.empty() ? "" : ",") + n;
    }
    if (row.target.empty()) row.target = "-";
    target_ = row.target;
    if (!ready) row.note = "not healthy before the fault (" + waiting_on + "); ";
    Progress("signing up the ledger's writers");
    LedgerOptions lo;
    lo.url = PublicUrl(*st);
    lo.writers = f_.writers;
    lo.readers = f_.readers;
    lo.job_writers = f_.jobs;
    lo.settle = milliseconds(f_.settle * 1000);
    auto ledger = Ledger::Start(lo);
    if (!ledger.ok()) {
      row.failed = true;
      row.note += ledger.error().message;
      return row;
    }
    ledger_ = std::move(*ledger);
    Hold("warm-up", 3);
    // The pids of the nodes the fault kills, just before it: recovery means new ones.
    std::map<std::string, int64_t> restarted;
    if (auto before = GetStatus(); before.ok())
      restarted = PidsOf(*before, RestartedNodes(f, *target));
    double fault_at = ledger_->Now();
    double recovered_at = -1;
    Status injected = Inject(f, *target, &recovered_at);
    if (!injected.ok()) {
      row.failed = true;
      row.note += "fault not injected: " + injected.error().message + "; ";
      if (recovered_at < 0) recovered_at = ledger_->Now();
    }
    double healthy_at = -1;
    bool healthy = WaitUntil(
        "recovering, waiting for full health", milliseconds(120000),
        [&] {
          if (!Healthy(recovered_at, &waiting_on, restarted)) return false;
          healthy_at = ledger_->Now();
          return true;
        },
        milliseconds(500));
    row.healthy = healthy;
    if (healthy) {
      row.health_s = healthy_at - recovered_at;
      Hold("healthy, a last second of traffic", 1);
    } else {
      row.note += "no full health within 120 s (" + waiting_on + "); ";
    }
    Progress("stopping the ledger");
    ledger_->Stop();
    Progress("verifying every acknowledged write and accepted job");
    LedgerRecord rec = ledger_->Record();
    LedgerObserved obs = ledger_->Observe();
    LedgerVerdict v = Tally(rec, obs);
    JobVerdict jv = TallyJobs(rec, obs);
    std::vector<double> times;
    for (const auto& a : rec.acks) times.push_back(a.t);
    WriteGaps g = ComputeGaps(times, fault_at, healthy_at, rec.stopped_at);
    row.write_gap_s = g.fault_gap_s;
    row.max_write_gap_s = g.max_gap_s;
    row.attempts = rec.attempts;
    row.acknowledged = rec.acks.size();
    row.failed_writes = rec.failed_writes;
    row.rejected = rec.rejected;
    row.reads = rec.reads;
    row.failed_reads = rec.failed_reads;
    row.media_reads = rec.media_reads;
    row.media_fallbacks = rec.media_fallbacks;
    std::sort(rec.read_ms.begin(), rec.read_ms.end());
    row.read_p50_ms = Percentile(rec.read_ms, 0.5);
    row.read_p99_ms = Percentile(rec.read_ms, 0.99);
    row.read_max_ms = rec.read_ms.empty() ? 0 : rec.read_ms.back();
    row.lost = v.lost;
    row.duplicated = v.duplicated;
    row.ambiguous = v.ambiguous;
    row.ambiguous_written = v.ambiguous_written;
    row.job_requests = rec.job_requests;
    row.failed_job_requests = rec.failed_job_requests;
    row.jobs_accepted = jv.accepted;
    row.jobs_lost = jv.lost;
    row.jobs_duplicated = jv.duplicated;
    row.jobs_ambiguous = jv.ambiguous;
    row.jobs_ran_after_503 = jv.ran_after_5xx;
    row.job_p99_s = jv.p99_s;
    for (size_t w = 0; w < obs.listed_ok.size(); ++w)
      if (!obs.listed_ok[w]) row.note += "writer " + std::to_string(w) + "'s list unread; ";
    if (!v.lost_captions.empty()) row.note += "lost e.g. " + v.lost_captions.front() + "; ";
    if (!v.duplicated_captions.empty())
      row.note += "duplicated e.g. " + v.duplicated_captions.front() + "; ";
    if (!jv.lost_jobs.empty()) row.note += "job lost e.g. " + jv.lost_jobs.front() + "; ";
    if (!jv.duplicated_jobs.empty())
      row.note += "job duplicated e.g. " + jv.duplicated_jobs.front() + "; ";
    if (jv.ran_after_5xx > 0)
      row.note += std::to_string(jv.ran_after_5xx) + " job(s) answered 503 ran all the same; ";
    while (!row.note.empty() && (row.note.back() == ' ' || row.note.back() == ';'))
      row.note.pop_back();
    ledger_.reset();
    return row;
  }

  // RUN_DIR/chaos_matrix.json (the dashboard's last matrix), and --json when given.
  void Publish(bool finished) {
    json::array rows;
    for (const auto& r : rows_) rows.push_back(RowJson(r));
    json::object o{{"rows", rows},
                   {"seconds", f_.seconds},
                   {"running", running_.empty() ? json::value(nullptr) : json::value(running_)},
                   {"finished", finished},
                   {"updated_at", FormatRfc3339(Env::Default().WallMillis())}};
    std::string text = json::serialize(o) + "\n";
    std::string tmp = run_dir_ + "/chaos_matrix.json.tmp";
    std::error_code ec;
    if (std::ofstream(tmp) << text)
      std::filesystem::rename(tmp, run_dir_ + "/chaos_matrix.json", ec);
    if (finished && !f_.json_out.empty()) std::ofstream(f_.json_out) << text;
  }

  MatrixFlags f_;
  std::string admin_host_, run_dir_, exe_;
  int admin_port_ = 0;
  std::vector<MatrixRow> rows_;
  std::unique_ptr<Ledger> ledger_;  // the running row's
  std::string running_, target_;
  size_t progress_width_ = 0;
  bool tty_ = isatty(2) == 1;
  std::string last_phase_;
};

}  // namespace

int RunChaosMatrix(const MatrixFlags& flags) {
  auto faults = ParseFaults(flags.faults);
  if (!faults.ok()) {
    fprintf(stderr, "millions chaos matrix: %s\n", faults.error().message.c_str());
    return 2;
  }
  if (flags.seconds < 1 || flags.writers < 1 || flags.readers < 0) {
    fprintf(stderr, "millions chaos matrix: --seconds and --writers must be positive\n");
    return 2;
  }
  if (flags.jobs < 0 || flags.jobs > flags.writers) {
    fprintf(stderr, "millions chaos matrix: --jobs must be between 0 and --writers (%d)\n",
            flags.writers);
    return 2;
  }
  if (flags.settle < 1) {
    fprintf(stderr, "millions chaos matrix: --settle must be positive\n");
    return 2;
  }
  Matrix m(flags);
  return m.Run(*faults);
}

}  // namespace millions::ctl
