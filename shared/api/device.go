package api

// deviceRoutes lists the routes of this protocol adapter.
func deviceRoutes() []Route { return nil }
