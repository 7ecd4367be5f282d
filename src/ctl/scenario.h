// `millions scenario NAME`: one step of the scaling story, measured on this machine. Each
// scenario starts what it needs (`millions single`, or `millions up` of a topology it writes on
// free loopback ports under its own work directory), runs the before and the after under a
// bounded load, stops everything (also on failure or Ctrl-C), prints a table and writes an SVG
// plot. `all --report DIR` runs every built one and writes DIR/index.html with every table and
// plot. Scenarios of stages not built yet say so and exit 2 (docs/scenarios.md).
// This header holds the pure parts (flags, tables, plots, their text, SVG and HTML) and the
// table of scenarios; scenario_env.h the machinery that starts and measures.
// Thread-safety: functions only; the table of scenarios is immutable. Ownership: values.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace millions::ctl {

struct ScenarioFlags {
  std::string name;               // a scenario, "all" or "list"
  std::string report_dir;         // where the SVGs (and with `all`, index.html) go
  std::string work_dir;           // where the runs live; empty: a fresh directory under /tmp
  bool short_form = false;        // seconds and small loads (CI)
  bool keep = false;              // keep the work directory
  std::string binary;             // the millions binary to start; empty: this one
  std::vector<std::string> skip;  // with `all`: scenarios left out
};

// Parses `millions scenario ...` (argv without the program and "scenario"). Returns -1 when
// the flags are to be run, else the exit code (0 after --help, 2 on a usage error), having
// printed the help or the error.
int ParseScenarioFlags(const std::vector<std::string>& args, ScenarioFlags* out);

struct ScenarioTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

struct PlotSeries {
  std::string label;
  std::vector<double> values;  // bars: one per category; lines: one per x
};

// A grouped bar chart (categories on x) or a line chart (x numeric), with event markers.
struct Plot {
  bool lines = false;
  std::string title, y_label, x_label;
  std::vector<std::string> categories;  // bars
  std::vector<double> x;                // lines
  std::vector<PlotSeries> series;
  std::vector<std::pair<double, std::string>> markers;  // lines: x of an event and its name
};

struct ScenarioResult {
  std::string name, title;
  std::string summary;  // one or two sentences: what the figures say
  ScenarioTable table;
  // More tables after the first, each under its own heading.
  std::vector<std::pair<std::string, ScenarioTable>> more_tables;
  Plot plot;
  std::vector<std::string> notes;  // caveats: what was not built, how the machine limits it
  bool built = true;
};

// The table as aligned text (a header, a rule, the rows).
std::string FormatTable(const ScenarioTable& t);
// A self-contained SVG document of the plot (no scripts, no external references).
std::string RenderSvg(const Plot& p);
// One HTML page: every result's title, summary, table, plot (inline SVG) and notes.
std::string RenderHtml(const std::vector<ScenarioResult>& results, const std::string& heading);
// Text with &, <, >, " escaped for XML and HTML.
std::string XmlEscape(const std::string& s);
// A number with `digits` after the point ("-" for NaN).
std::string Num(double v, int digits = 1);

class ScenarioEnv;
struct ScenarioInfo {
  std::string name, title, what;  // what: one line for `list` and --help
  bool built = true;
  std::string not_built;  // why not, when !built
  std::function<ScenarioResult(ScenarioEnv&)> run;
};

// Every scenario, in the story's order.
const std::vector<ScenarioInfo>& Scenarios();
const ScenarioInfo* FindScenario(const std::string& name);

// Runs what the flags name: prints tables, writes SVGs (and the report). 0 ok, 1 a scenario
// failed, 2 usage or a scenario not built.
int RunScenarios(const ScenarioFlags& flags);

}  // namespace millions::ctl
