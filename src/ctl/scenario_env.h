// What a scenario runs on: its own work directory, the millions binary started as child
// processes (`single`, `up --detach`, `load --json`, `chaos`, `scale`, `down`), each bounded in
// time and logged to a file under the work directory, topologies written on free loopback ports,
// and the nodes' /metrics read over loopback. Whatever it started is stopped when the env is
// destroyed (`down` for every `up`, SIGTERM for `single`), also after an exception; SIGINT and
// SIGTERM end the child in hand and make the next step throw Interrupted, so a Ctrl-C cleans up.
// Thread-safety: one thread uses an env. Ownership: owns the processes and runs it started.
#pragma once

#include <sys/types.h>

#include <boost/json.hpp>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace millions::ctl {

struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted") {}
};

// Installs the SIGINT/SIGTERM handlers that interrupt a scenario (once per process).
void InstallScenarioSignals();
bool ScenarioInterrupted();

// What a topology for `up` holds; every address is a free loopback port.
struct TopoSpec {
  std::string name = "scenario";
  int web = 2, web_threads = 1;
  int lb = 1;
  int pg = 1;                   // PostgreSQL members under Patroni (one primary, the rest replicas)
  int redis = 0;                // cache nodes
  int64_t l1_bytes = 67108864;  // each web node's L1 (0: none)
  bool nats = false;            // NATS JetStream and `workers` worker processes
  int workers = 0, worker_threads = 1;
  bool edge = false;
  // Sharded: each PostgreSQL member is its own cluster (s1, s2, ...), with [shards] of this
  // many logical shards (0: not sharded, one cluster) of which the first map uses `initial`.
  int logical_shards = 0, initial_shards = 0;
  std::string extra;  // more TOML appended as is
  // A whole topology as is ("@RUN@" for the run directory): the fields above are ignored.
  std::string text;
};

struct LoadResult {
  double rps = 0, p50_ms = 0, p99_ms = 0, seconds = 0;
  double requests = 0, errors = 0;
  std::vector<std::pair<double, double>> timeline;  // per second: successes, errors
};

class ScenarioEnv {
 public:
  ScenarioEnv(std::string work_dir, std::string binary, bool short_form);
  ~ScenarioEnv();  // stops what is still running
  ScenarioEnv(const ScenarioEnv&) = delete;
  ScenarioEnv& operator=(const ScenarioEnv&) = delete;

  bool short_form() const { return short_; }
  const std::string& dir() const { return dir_; }
  // `full` in the full form, `brief` in the short one.
  int Pick(int full, int brief) const { return short_ ? brief : full; }
  // Throws Interrupted after SIGINT/SIGTERM.
  void Check() const;
  void Say(const std::string& line) const;  // progress on stderr

  int FreePort();
  std::string FreeAddr() { return "127.0.0.1:" + std::to_string(FreePort()); }

  // `millions single` on a free port with its own data dir; returns its base URL.
  std::string StartSingle();
  void StopSingle();
  // Writes the topology into a fresh sub-directory `label` and runs `up --detach` there
  // (throws on failure, with the tail of its log). Returns the public URL (the first balancer).
  std::string Up(const std::string& label, const TopoSpec& spec);
  void Down();  // `down` of the current run (no-op without one)
  // `status --json` of the current run.
  boost::json::object Status();
  // The address (host:port) of node `name` in the current run, or "".
  std::string NodeAddress(const std::string& name);
  // `millions ARGS` from the work directory, logged to `log` there; its exit status. `tick`,
  // when set, is called about every 50 ms while it runs.
  int Millions(const std::vector<std::string>& args, int timeout_s, const std::string& log,
               const std::function<void()>& tick = {});
  // `millions ARGS` started in the background from the work directory, logged to `log` there;
  // its pid. One still running when the env is destroyed gets SIGTERM (SIGKILL 10 s later).
  pid_t StartMillions(const std::vector<std::string>& args, const std::string& log);
  // Waits for a child of StartMillions up to timeout_s (then stops it); its exit status.
  int WaitMillions(pid_t pid, int timeout_s);
  // The topology file of the run that is up ("" when none).
  const std::string& topology() const { return run_topology_; }
  void Chaos(const std::vector<std::string>& args);  // `chaos ARGS --topology T`; throws on failure
  void Scale(const std::string& role, int count);

  // `millions load` against `target`; throws when it fails to run at all.
  // `during`, when set, is called about every 50 ms while the measured part runs, with the
  // seconds since it started (the same clock as the result's timeline): to inject a fault.
  LoadResult Load(const std::string& target, int users, int seconds, const std::string& mix,
                  const std::function<void(double)>& during = {});

  // Sum of the samples of `metric` (whose label text contains every string of `must`) on every
  // node of `role` in the current run, read from their /metrics.
  double MetricSum(const std::string& role, const std::string& metric,
                   const std::vector<std::string>& must = {});
  // The same on one address (host:port).
  double MetricAt(const std::string& addr, const std::string& metric,
                  const std::vector<std::string>& must = {});

 private:
  std::string TopologyText(const TopoSpec& spec);

  std::string dir_, bin_;
  bool short_;
  std::string run_topology_;  // the topology of the run that is up ("" when none)
  pid_t single_pid_ = 0;
  std::vector<pid_t> background_;  // StartMillions children not yet waited for
  int seq_ = 0;
};

// One API request to a base URL (http://127.x.y.z:port): status (0 when unreachable), body and
// the X-Cache header. `token`: a bearer token.
struct ApiAnswer {
  int status = 0;
  std::string body, x_cache;
};
ApiAnswer Api(const std::string& base, const std::string& method, const std::string& target,
              const std::string& body = "", const std::string& content_type = "",
              const std::string& token = "");
// Signs up and logs in `handle` (password "password123"); returns the user id and the token.
// Throws when either fails.
std::pair<std::string, std::string> SignUpUser(const std::string& base, const std::string& handle);

// Fields of a balancer, web or worker's /metrics text: the sum of `metric`'s samples whose
// labels contain each of `must` (pure; scenario_test.cc).
double SumMetric(const std::string& text, const std::string& metric,
                 const std::vector<std::string>& must);
// Reads `millions load --json` output; nothing when it is not that summary.
std::optional<LoadResult> ParseLoadJson(const std::string& text);

}  // namespace millions::ctl
