// Moved to src/devenv (the demo uses it too).
export * from '../../src/devenv/compute-world.js';
