// The recipes the table (recipes.cc) lists, one factory per file of this folder. Internal to
// the runner: the supervisor sees them only as Recipe (ctl/recipe.h).
// Thread-safety and ownership: see ctl/recipe.h.
#pragma once

#include <memory>

#include "ctl/recipe.h"

namespace millions::ctl {

std::unique_ptr<Recipe> NewEtcdRecipe();
std::unique_ptr<Recipe> NewPatroniRecipe();
std::unique_ptr<Recipe> NewRedisRecipe();
std::unique_ptr<Recipe> NewNatsRecipe();
std::unique_ptr<Recipe> NewWebRecipe();
std::unique_ptr<Recipe> NewWorkerRecipe();
std::unique_ptr<Recipe> NewLbRecipe();

}  // namespace millions::ctl
