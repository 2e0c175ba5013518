public enum FleetCorePlaceholder {}
