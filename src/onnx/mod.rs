//! Writing an ONNX graph (opset 17): a builder of nodes, constants, inputs and outputs over the
//! protobuf messages of the official schema (`pb`, encoded by prost), and the funnel's
//! log-space arithmetic (`LogSpace`) over a graph's values, so an exported model computes each
//! stage's probabilities by the very formulas `Funnel::log_probs` states.

#[rustfmt::skip]
pub mod pb;
mod log_space;
mod value;

use std::cell::RefCell;
use std::rc::Rc;

use prost::Message;

/// The operator set the graphs use: ONNX 1.12's, read by ONNX Runtime ≥ 1.12 and tract.
pub const OPSET: i64 = 17;
/// The IR version of opset 17.
const IR_VERSION: i64 = 8;

/// A value of the graph: a node's output, an input or a constant, by name, with its columns
/// where it is a matrix of rows (what `LogSpace` reads). Its ops are in `value.rs`.
#[derive(Clone)]
pub struct Value {
    g: Rc<RefCell<Nodes>>,
    pub name: String,
    /// Columns of a rows x columns value; 0 where that means nothing.
    pub cols: usize,
}

#[derive(Default)]
struct Nodes {
    nodes: Vec<pb::NodeProto>,
    constants: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    outputs: Vec<pb::ValueInfoProto>,
    next: usize,
}

/// A graph under construction.
#[derive(Clone, Default)]
pub struct Graph {
    g: Rc<RefCell<Nodes>>,
}

/// A node attribute.
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
}

/// The element types of the graph's inputs.
#[derive(Clone, Copy)]
pub enum Elem {
    F32,
    I64,
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    fn value(&self, name: String, cols: usize) -> Value {
        Value {
            g: self.g.clone(),
            name,
            cols,
        }
    }

    /// A rows x `cols` input (a vector of rows when `cols` is `None`), the rows dynamic
    /// (`batch`).
    pub fn input(&self, name: &str, elem: Elem, cols: Option<usize>) -> Value {
        let mut dims = vec![dim_param("batch")];
        dims.extend(cols.map(|c| dim_value(c as i64)));
        self.g
            .borrow_mut()
            .inputs
            .push(value_info(name, elem, dims));
        self.value(name.to_string(), cols.unwrap_or(0))
    }

    /// A rows x width input whose width is dynamic too (`width`, a padded list per row).
    pub fn padded_input(&self, name: &str, elem: Elem, width: &str) -> Value {
        let dims = vec![dim_param("batch"), dim_param(width)];
        self.g
            .borrow_mut()
            .inputs
            .push(value_info(name, elem, dims));
        self.value(name.to_string(), 0)
    }

    /// A float constant of shape `dims`, named `name` (a weight's checkpoint key) when no value
    /// has that name yet.
    pub fn constant(&self, name: &str, dims: &[usize], values: Vec<f32>) -> Value {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        let taken = self.g.borrow().constants.iter().any(|c| c.name == name);
        let name = if taken || name.contains('#') {
            self.fresh(name)
        } else {
            name.to_string()
        };
        self.g.borrow_mut().constants.push(pb::TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            float_data: values,
            name: name.clone(),
            ..Default::default()
        });
        self.value(name, dims.get(1).copied().unwrap_or(0))
    }

    /// A scalar float constant.
    pub fn scalar(&self, v: f32) -> Value {
        self.constant("scalar", &[], vec![v])
    }

    /// An int64 vector constant (shapes, axes, slice bounds).
    pub fn ints(&self, values: &[i64]) -> Value {
        let name = self.fresh("ints");
        self.g.borrow_mut().constants.push(pb::TensorProto {
            dims: vec![values.len() as i64],
            data_type: pb::tensor_proto::DataType::Int64 as i32,
            int64_data: values.to_vec(),
            name: name.clone(),
            ..Default::default()
        });
        self.value(name, 0)
    }

    /// Bytes of the weights so far (what bounds the file's size).
    pub fn constant_bytes(&self) -> usize {
        let g = self.g.borrow();
        g.constants
            .iter()
            .map(|c| 4 * c.float_data.len() + 8 * c.int64_data.len())
            .sum()
    }

    /// A name not used yet, from `hint` (`hint#n`: `#` never ends a checkpoint key).
    fn fresh(&self, hint: &str) -> String {
        let mut g = self.g.borrow_mut();
        g.next += 1;
        format!("{hint}#{}", g.next)
    }

    /// One node of `op` on `inputs`, its output having `cols` columns.
    pub fn op(&self, op: &str, inputs: &[&Value], attrs: Vec<(&str, Attr)>, cols: usize) -> Value {
        let name = self.fresh(op);
        let attribute = attrs
            .into_iter()
            .map(|(n, a)| {
                use pb::attribute_proto::AttributeType as T;
                let mut p = pb::AttributeProto {
                    name: n.to_string(),
                    ..Default::default()
                };
                match a {
                    Attr::Int(i) => (p.i, p.r#type) = (i, T::Int as i32),
                    Attr::Ints(v) => (p.ints, p.r#type) = (v, T::Ints as i32),
                    Attr::Float(f) => (p.f, p.r#type) = (f, T::Float as i32),
                }
                p
            })
            .collect();
        self.g.borrow_mut().nodes.push(pb::NodeProto {
            input: inputs.iter().map(|v| v.name.clone()).collect(),
            output: vec![name.clone()],
            name: name.clone(),
            op_type: op.to_string(),
            attribute,
            ..Default::default()
        });
        self.value(name, cols)
    }

    /// Make `v` a graph output named `name` (a float vector of rows).
    pub fn output(&self, v: &Value, name: &str) {
        let out = self.op("Identity", &[v], Vec::new(), v.cols);
        let mut g = self.g.borrow_mut();
        if let Some(node) = g.nodes.last_mut() {
            node.output = vec![name.to_string()];
        }
        let dims = vec![dim_param("batch")];
        g.outputs.push(value_info(name, Elem::F32, dims));
        drop(out);
    }

    /// The model file's bytes: the graph named `name`, with `doc` as its documentation and
    /// `metadata` as the model's key-value properties. The graph's contents move into the
    /// message (no second copy of the weights): it is empty afterwards.
    pub fn encode(&self, name: &str, doc: &str, metadata: &[(String, String)]) -> Vec<u8> {
        let g = std::mem::take(&mut *self.g.borrow_mut());
        let model = pb::ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "funnel".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.into(),
            metadata_props: metadata
                .iter()
                .map(|(k, v)| pb::StringStringEntryProto {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            graph: Some(pb::GraphProto {
                node: g.nodes,
                name: name.into(),
                initializer: g.constants,
                input: g.inputs,
                output: g.outputs,
                ..Default::default()
            }),
            ..Default::default()
        };
        model.encode_to_vec()
    }
}

fn dim_param(name: &str) -> pb::tensor_shape_proto::Dimension {
    pb::tensor_shape_proto::Dimension {
        value: Some(pb::tensor_shape_proto::dimension::Value::DimParam(
            name.into(),
        )),
        ..Default::default()
    }
}

fn dim_value(v: i64) -> pb::tensor_shape_proto::Dimension {
    pb::tensor_shape_proto::Dimension {
        value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)),
        ..Default::default()
    }
}

fn value_info(
    name: &str,
    elem: Elem,
    dims: Vec<pb::tensor_shape_proto::Dimension>,
) -> pb::ValueInfoProto {
    let elem_type = match elem {
        Elem::F32 => pb::tensor_proto::DataType::Float,
        Elem::I64 => pb::tensor_proto::DataType::Int64,
    } as i32;
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type,
                shape: Some(pb::TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
