// The table of recipes: every kind of node `millions up` can run. A new kind is one file in this
// folder and one line here (see docs/architecture.md, "How to add a recipe").
#include "ctl/recipes/recipes.h"

#include <algorithm>

namespace millions::ctl {

std::vector<std::unique_ptr<Recipe>> MakeRecipes() {
  std::vector<std::unique_ptr<Recipe>> table;
  table.push_back(NewEtcdRecipe());
  table.push_back(NewPatroniRecipe());
  table.push_back(NewRedisRecipe());
  table.push_back(NewTimelineRecipe());
  table.push_back(NewNatsRecipe());
  table.push_back(NewWebRecipe());
  table.push_back(NewWorkerRecipe());
  table.push_back(NewLbRecipe());
  table.push_back(NewEdgeRecipe());
  table.push_back(NewDnsRecipe());
  table.push_back(NewPrometheusRecipe());
  // Stage order, whatever the order of the lines above.
  std::stable_sort(table.begin(), table.end(),
                   [](const auto& a, const auto& b) { return a->Stage() < b->Stage(); });
  return table;
}

// The default status writer: the supervisor's row as it is.
Recipe::StatusWriter Recipe::StatusRows(const std::vector<Node>&) const {
  return [](const Node&, boost::json::object row, boost::json::array* out) {
    out->push_back(std::move(row));
  };
}

}  // namespace millions::ctl
