// The scenarios' output: tables as text, plots as SVG, every result on one HTML page. Pure
// functions (scenario_test.cc checks them); the SVG is drawn by hand, like the dashboard's
// graphs, so nothing is fetched at view time.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "ctl/scenario.h"

namespace millions::ctl {

std::string Num(double v, int digits) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormatTable(const ScenarioTable& t) {
  std::vector<size_t> w(t.columns.size(), 0);
  for (size_t i = 0; i < t.columns.size(); ++i) w[i] = t.columns[i].size();
  for (const auto& r : t.rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < w.size(); ++i) {
      std::string c = i < cells.size() ? cells[i] : "";
      // The first column is a name (left-aligned); the others are figures (right-aligned).
      std::string pad(w[i] - std::min(w[i], c.size()), ' ');
      out += i == 0 ? c + pad : pad + c;
      if (i + 1 < w.size()) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(t.columns);
  size_t total = 0;
  for (size_t x : w) total += x + 2;
  out += std::string(total > 2 ? total - 2 : 0, '-') + "\n";
  for (const auto& r : t.rows) out += line(r);
  return out;
}

namespace {

const char* kColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"};
constexpr double kW = 640, kH = 360, kLeft = 70, kRight = 20, kTop = 40, kBottom = 70;

// A "nice" upper bound for the y axis: 1, 2 or 5 times a power of ten, at least `v`.
double NiceMax(double v) {
  if (!(v > 0) || !std::isfinite(v)) return 1;
  double p = std::pow(10, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= v) return m * p;
  return 10 * p;
}

}  // namespace

std::string RenderSvg(const Plot& p) {
  std::ostringstream o;
  double top = 0, xmin = 0, xmax = 1;
  for (const auto& s : p.series)
    for (double v : s.values)
      if (std::isfinite(v)) top = std::max(top, v);
  top = NiceMax(top);
  if (p.lines && !p.x.empty()) {
    xmin = *std::min_element(p.x.begin(), p.x.end());
    xmax = *std::max_element(p.x.begin(), p.x.end());
    if (xmax <= xmin) xmax = xmin + 1;
  }
  const double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  auto Y = [&](double v) { return kTop + ph - ph * std::clamp(v / top, 0.0, 1.0); };
  auto X = [&](double x) { return kLeft + pw * (x - xmin) / (xmax - xmin); };
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kW << "\" height=\"" << kH
    << "\" viewBox=\"0 0 " << kW << " " << kH << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << kW / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">"
    << XmlEscape(p.title) << "</text>\n";
  for (int i = 0; i <= 4; ++i) {  // grid and y ticks
    double v = top * i / 4, y = Y(v);
    o << "<line x1=\"" << kLeft << "\" x2=\"" << kW - kRight << "\" y1=\"" << y << "\" y2=\"" << y
      << "\" stroke=\"#ddd\"/>\n<text x=\"" << kLeft - 6 << "\" y=\"" << y + 4
      << "\" text-anchor=\"end\">" << Num(v, top < 10 ? 2 : 0) << "</text>\n";
  }
  o << "<text transform=\"translate(16," << kTop + ph / 2
    << ") rotate(-90)\" text-anchor=\"middle\">" << XmlEscape(p.y_label) << "</text>\n";
  if (!p.lines) {
    size_t groups = std::max<size_t>(1, p.categories.size()),
           n = std::max<size_t>(1, p.series.size());
    double gw = pw / groups, bw = gw * 0.8 / n;
    for (size_t g = 0; g < p.categories.size(); ++g) {
      for (size_t s = 0; s < p.series.size(); ++s) {
        double v = g < p.series[s].values.size() ? p.series[s].values[g] : NAN;
        if (!std::isfinite(v)) continue;
        double x = kLeft + gw * g + gw * 0.1 + bw * s;
        o << "<rect x=\"" << x << "\" y=\"" << Y(v) << "\" width=\"" << bw << "\" height=\""
          << kTop + ph - Y(v) << "\" fill=\"" << kColors[s % 6] << "\"><title>"
          << XmlEscape(p.series[s].label + " " + p.categories[g]) << ": " << Num(v, 2)
          << "</title></rect>\n";
      }
      o << "<text x=\"" << kLeft + gw * (g + 0.5) << "\" y=\"" << kTop + ph + 16
        << "\" text-anchor=\"middle\">" << XmlEscape(p.categories[g]) << "</text>\n";
    }
  } else {
    for (int i = 0; i <= 4; ++i) {  // x ticks
      double x = xmin + (xmax - xmin) * i / 4;
      o << "<text x=\"" << X(x) << "\" y=\"" << kTop + ph + 16 << "\" text-anchor=\"middle\">"
        << Num(x, 0) << "</text>\n";
    }
    for (const auto& [x, name] : p.markers)
      o << "<line x1=\"" << X(x) << "\" x2=\"" << X(x) << "\" y1=\"" << kTop << "\" y2=\""
        << kTop + ph << "\" stroke=\"#e15759\" stroke-dasharray=\"4 3\"/>\n<text x=\"" << X(x) + 3
        << "\" y=\"" << kTop + 12 << "\" fill=\"#e15759\">" << XmlEscape(name) << "</text>\n";
    for (size_t s = 0; s < p.series.size(); ++s) {
      o << "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" << kColors[s % 6]
        << "\" points=\"";
      for (size_t i = 0; i < p.x.size() && i < p.series[s].values.size(); ++i)
        if (std::isfinite(p.series[s].values[i]))
          o << X(p.x[i]) << "," << Y(p.series[s].values[i]) << " ";
      o << "\"/>\n";
    }
  }
  o << "<text x=\"" << kLeft + pw / 2 << "\" y=\"" << kTop + ph + 34 << "\" text-anchor=\"middle\">"
    << XmlEscape(p.x_label) << "</text>\n";
  for (size_t s = 0; s < p.series.size(); ++s) {  // legend
    double x = kLeft + 150.0 * static_cast<double>(s), y = kH - 14;
    o << "<rect x=\"" << x << "\" y=\"" << y - 10 << "\" width=\"12\" height=\"12\" fill=\""
      << kColors[s % 6] << "\"/><text x=\"" << x + 16 << "\" y=\"" << y << "\">"
      << XmlEscape(p.series[s].label) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

std::string RenderHtml(const std::vector<ScenarioResult>& results, const std::string& heading) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
    << XmlEscape(heading) << "</title>\n<style>body{font-family:sans-serif;max-width:60em;"
    << "margin:2em auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:"
    << "2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
    << ".notes{color:#555}</style></head>\n<body>\n<h1>" << XmlEscape(heading) << "</h1>\n";
  for (const auto& r : results) {
    o << "<section id=\"" << XmlEscape(r.name) << "\">\n<h2>" << XmlEscape(r.name) << ": "
      << XmlEscape(r.title) << "</h2>\n<p>" << XmlEscape(r.summary) << "</p>\n";
    auto table = [&](const ScenarioTable& t) {
      if (t.columns.empty()) return;
      o << "<table>\n<tr>";
      for (const auto& c : t.columns) o << "<th>" << XmlEscape(c) << "</th>";
      o << "</tr>\n";
      for (const auto& row : t.rows) {
        o << "<tr>";
        for (const auto& c : row) o << "<td>" << XmlEscape(c) << "</td>";
        o << "</tr>\n";
      }
      o << "</table>\n";
    };
    table(r.table);
    for (const auto& [heading, t] : r.more_tables) {
      o << "<h3>" << XmlEscape(heading) << "</h3>\n";
      table(t);
    }
    if (!r.plot.series.empty()) o << "<figure>\n" << RenderSvg(r.plot) << "</figure>\n";
    if (!r.notes.empty()) {
      o << "<ul class=\"notes\">\n";
      for (const auto& n : r.notes) o << "<li>" << XmlEscape(n) << "</li>\n";
      o << "</ul>\n";
    }
    o << "</section>\n";
  }
  o << "</body></html>\n";
  return o.str();
}

}  // namespace millions::ctl
