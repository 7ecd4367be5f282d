// `millions scenario queue`: edit jobs per second as workers are added. One run of `up` with
// NATS JetStream and one worker process (one job at a time each); for 1, 2 and 4 workers
// (`millions scale worker N`), a batch of edit jobs is accepted as fast as the API takes them,
// and the clock runs until the workers' done counter has grown by the batch.
#include <boost/json.hpp>
#include <chrono>
#include <thread>

#include "ctl/png.h"
#include "ctl/scenarios.h"

namespace millions::ctl {

ScenarioResult RunQueue(ScenarioEnv& env) {
  const int jobs = env.Pick(60, 12);
  std::vector<int> counts = env.short_form() ? std::vector<int>{1, 2} : std::vector<int>{1, 2, 4};
  TopoSpec spec;
  spec.web = 1;
  spec.nats = true;
  spec.workers = 1;
  spec.worker_threads = 1;
  std::string url = env.Up("queue", spec);
  auto [uid, token] = SignUpUser(url, "queue_scenario");
  auto up = Api(url, "POST", "/api/photos?caption=queue", MakePng(800, 600, 1), "image/png", token);
  if (up.status != 201) throw std::runtime_error("upload failed: " + std::to_string(up.status));
  std::string photo(boost::json::parse(up.body).as_object().at("id").as_string());
  const std::string ops = R"({"ops":[{"op":"blur","sigma":2},{"op":"grayscale"}]})";
  const std::vector<std::string> done{"status=\"done\""};

  ScenarioResult r;
  r.table.columns = {"workers", "jobs", "seconds", "jobs/s", "speed-up"};
  r.plot.title = "Edit jobs per second by workers";
  r.plot.y_label = "jobs/s";
  r.plot.series = {{"jobs/s", {}}};
  double first = 0;
  for (int n : counts) {
    env.Check();
    if (n > 1) {
      env.Say("scale worker " + std::to_string(n));
      env.Scale("worker", n);
    }
    double done0 = env.MetricSum("worker", "millions_jobs_total", done);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < jobs; ++i) {
      auto a = Api(url, "POST", "/api/photos/" + photo + "/edits", ops, "application/json", token);
      if (a.status != 202)
        throw std::runtime_error("edit job refused: " + std::to_string(a.status));
    }
    double got = 0;
    auto deadline = t0 + std::chrono::seconds(env.Pick(300, 120));
    while ((got = env.MetricSum("worker", "millions_jobs_total", done) - done0) < jobs) {
      env.Check();
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error(std::to_string(n) + " workers: only " + Num(got, 0) + " of " +
                                 std::to_string(jobs) + " jobs done in time");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double rate = jobs / secs;
    if (first == 0) first = rate;
    env.Say(std::to_string(n) + " workers: " + Num(rate, 2) + " jobs/s");
    r.table.rows.push_back({std::to_string(n), std::to_string(jobs), Num(secs, 2), Num(rate, 2),
                            Num(rate / first, 2) + "x"});
    r.plot.categories.push_back(std::to_string(n) + (n == 1 ? " worker" : " workers"));
    r.plot.series[0].values.push_back(rate);
  }
  env.Down();
  r.summary = "Batches of " + std::to_string(jobs) +
              " edit jobs (blur and grayscale of an 800x600 photo) drained by " +
              std::to_string(counts.front()) + " to " + std::to_string(counts.back()) +
              " worker processes, one job at a time each: " + r.table.rows.back()[3] +
              " jobs/s with " + std::to_string(counts.back()) + " against " +
              r.table.rows.front()[3] + " with one.";
  r.notes = {
      "This machine has two cores, shared with NATS, the web node and PostgreSQL: the speed-up "
      "stays below the worker count here; on more machines each worker adds its own."};
  return r;
}

}  // namespace millions::ctl
