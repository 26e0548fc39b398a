// Placeholder so the library links before the subsystem lands.
namespace md {}
