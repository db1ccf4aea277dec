//! A Pulsar cluster: the components that belong together.
