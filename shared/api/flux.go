package api

// fluxRoutes lists the routes of this protocol adapter.
func fluxRoutes() []Route { return nil }
