package api

// seedRoutes lists the routes of this protocol adapter.
func seedRoutes() []Route { return nil }
